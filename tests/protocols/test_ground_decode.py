"""Ground messages held to their schema: a state's one-pass check accepts and refuses exactly
what decoding, then checking its body, did."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import ground

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
SNAPSHOT: dict[str, Any] = {
    "device": "key", "kind": "light", "online": True, "offline_reason": None,
    "identity": {"model": "SimLight"}, "status": {"on": True, "intensity_permille": 500},
    "status_at": 1795792325.5, "missed_polls": 0, "link": {"requests": 3, "rtt_p50_ms": 5.0},
    "timecode_offset_frames": None, "pdu_channel": 2, "protocol": "native",
}  # fmt: skip
FIELDS = [*SNAPSHOT, "camera_settings", "reports", "not_reported", "unknown_field"]


@st.composite
def state_bodies(draw: st.DrawFn) -> Any:
    """A node's state, one missing, one changed to any JSON, or any JSON at all."""
    body = dict(SNAPSHOT)
    for _ in range(draw(st.integers(0, 2))):
        field = draw(st.sampled_from(FIELDS))
        if draw(st.booleans()):
            body.pop(field, None)
        else:
            body[field] = draw(JSON)
    return draw(st.just(body) | JSON)


def _two_steps(payload: bytes) -> ground.Envelope:
    """What the check was: decode, then hold the body to the schema."""
    envelope = ground.decode(payload)
    envelope.body = msgspec.structs.asdict(msgspec.convert(envelope.body, ground.DeviceSnapshot))
    return envelope


@given(state_bodies(), st.none() | st.integers(1, 2**40))
def test_a_state_is_accepted_and_read_as_decoding_then_checking_its_body(
    body: Any, seq: int | None
) -> None:
    envelope = {"v": 1, "node": "n", "kind": "state", "ts": 1.5, "body": body, "seq": seq}
    payload = msgspec.json.encode(envelope)
    try:
        expected: ground.Envelope | None = _two_steps(payload)
    except (msgspec.DecodeError, msgspec.ValidationError):
        expected = None
    if expected is None:
        with pytest.raises((msgspec.DecodeError, msgspec.ValidationError)):
            ground.decode_checked(payload, ground.STATE)
        return
    got = ground.decode_checked(payload, ground.STATE)
    assert type(got) is ground.Envelope  # not the typed subclass: equal, picklable as any
    assert got == expected


def test_a_state_as_the_node_sends_it_reads_exactly_as_sent() -> None:
    """Every field, each as its schema's type: the dict the two steps kept, key for key."""
    snapshot = ground.DeviceSnapshot(
        device="cam-a", kind="camera", online=True, offline_reason=None,
        identity={"model": "SimCam"}, status={"state": "standby", "timecode": 1000},
        status_at=1795792325.25, missed_polls=2, link={"requests": 3},
        timecode_offset_frames=0.01, timecode_uncertainty_frames=0.002,
        timecode_measured_at=1795792324.5, pdu_channel=1,
        camera_settings={"iso": 800}, reports=["media"], not_reported=["draw"],
    )  # fmt: skip
    # every field of the envelope set, none at its default: the one pass copies each one
    envelope = {"v": 1, "node": "n", "kind": ground.STATE, "ts": 2.5, "body": snapshot,
                "seq": 7, "bd_seq": 3, "stream": 9, "historical": True}  # fmt: skip
    assert set(envelope) == set(ground.Envelope.__struct_fields__)
    payload = msgspec.json.encode(envelope)
    got = ground.decode_checked(payload, ground.STATE)
    assert got == ground.decode(payload)
    assert got.body == msgspec.json.decode(payload)["body"]


def test_a_state_nested_too_deeply_is_malformed_not_a_crash() -> None:
    bomb = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    payload = b'{"v":1,"node":"n","kind":"state","ts":1,"body":{"status":' + bomb + b"}}"
    with pytest.raises(msgspec.DecodeError):
        ground.decode_checked(payload, ground.STATE)
