"""Node messages as archive rows: the stream they belong to, and what is not kept."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import ground
from tests.ground.node_messages import NODE, T0, birth, event, telemetry
from tools.archive.rows import UNKNOWN_STREAM, Rejected, SessionRow, StreamRow, Streams


def test_stream_messages_take_the_latest_births_stream() -> None:
    streams = Streams()
    before = streams.row(ground.topic(NODE, "event"), event(1, T0), T0 + 1)
    assert isinstance(before, StreamRow) and before.stream == UNKNOWN_STREAM
    born = streams.row(ground.topic(NODE, "birth"), birth(77, 3, T0), T0 + 1)
    assert isinstance(born, SessionRow) and (born.stream, born.bd_seq) == (77, 3)
    after = streams.row(ground.topic(NODE, "telemetry"), telemetry(2, T0 + 1), T0 + 2)
    assert isinstance(after, StreamRow)
    assert (after.stream, after.seq, after.kind) == (77, 2, "telemetry")
    assert after.ts.timestamp() == pytest.approx(T0 + 1)
    assert after.received.timestamp() == pytest.approx(T0 + 2)


def test_a_known_stream_carries_over_from_the_database() -> None:
    row = Streams({NODE: 5}).row(ground.topic(NODE, "event"), event(9, T0), T0)
    assert isinstance(row, StreamRow) and row.stream == 5


def test_states_are_kept_under_their_topic() -> None:
    payload = ground.encode(ground.Envelope(
        v=1, node=NODE, kind="state", ts=T0, bd_seq=1, stream=5,
        body={"device": "cam-a", "kind": "camera", "online": True, "offline_reason": None,
              "identity": None, "status": None, "status_at": None, "missed_polls": 0,
              "link": {}},
    ))  # fmt: skip
    row = Streams().row(ground.topic(NODE, "state", "cam-a"), payload, T0)
    assert isinstance(row, SessionRow) and row.topic == "state/cam-a"


@pytest.mark.parametrize(
    ("topic", "payload", "why"),
    [
        ("elsewhere/x", event(1, T0), "not a Cupola topic"),
        (ground.topic(NODE, "cmd"), b"{}", "not archived"),
        (ground.topic(NODE, "local", "event"), event(1, T0), "not archived"),
        (ground.topic(NODE, "event"), b"{", "breaks the schema"),
        (ground.topic(NODE, "event"), telemetry(1, T0), "breaks the schema"),
        (ground.topic("other", "event"), event(1, T0), "claims to be from node"),
    ],
)
def test_what_is_not_kept_says_why(topic: str, payload: bytes, why: str) -> None:
    with pytest.raises(Rejected, match=why):
        Streams().row(topic, payload, T0)


@given(st.binary(max_size=300))
def test_any_bytes_are_a_row_or_a_rejection(payload: bytes) -> None:
    with contextlib.suppress(Rejected):
        Streams().row(ground.topic(NODE, "event"), payload, T0)
