"""A tap reader joins a live link at any byte: the tail of the frame under way is not damage."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from protocols import sony9pin as s9
from protocols.spec_tables import vectors
from protocols.tap import Direction, TapRecord
from tools.decode import DAMAGED, Tally
from tools.exits import EX_DATAERR
from tools.tap_client import format_tap_line, tap_entries

WIRES = [v.wire for v in vectors()]
REQUEST, REPLY = WIRES[0], WIRES[2]


def _watch(
    records: list[TapRecord], protocol: str = "native"
) -> tuple[list[dict[str, object]], Tally]:
    tally = Tally(delimited=protocol == "native")
    entries = []
    fed = (r._replace(data=tally.count_input(r.data)) for r in records)
    for entry in tap_entries(fed, protocol):
        tally.count(entry)
        entries.append(entry)
    return entries, tally


def _record(direction: Direction, data: bytes) -> TapRecord:
    return TapRecord(direction, 1_000_000_000, data)


def test_a_reader_joining_inside_a_reply_sees_its_tail_named_and_exits_clean() -> None:
    entries, tally = _watch([
        _record(Direction.FROM_DEVICE, REPLY[5:]),
        _record(Direction.TO_DEVICE, REQUEST),
        _record(Direction.FROM_DEVICE, REPLY),
    ])  # fmt: skip
    assert [e["status"] for e in entries] == ["joined", "ok", "ok"]
    assert not entries[2]["resync"]  # joining is not a resync after damage
    assert tally.status() == 0 and tally.joined_bytes == entries[0]["length"]
    assert f"{tally.joined_bytes} before the first whole frame" in tally.summary()
    assert "the tail of a frame begun before joining" in format_tap_line(entries[0])


def test_garbage_after_a_directions_first_whole_frame_is_still_damage() -> None:
    entries, tally = _watch([
        _record(Direction.TO_DEVICE, REQUEST),  # the other direction's frame does not count
        _record(Direction.FROM_DEVICE, REPLY[5:]),
        _record(Direction.FROM_DEVICE, REPLY),
        _record(Direction.FROM_DEVICE, b"\x13\x37noise\x00"),
        _record(Direction.FROM_DEVICE, REPLY),
    ])  # fmt: skip
    assert [e["status"] for e in entries] == ["ok", "joined", "ok", "dropped", "ok"]
    assert entries[4]["resync"]
    assert tally.status() == DAMAGED


@given(
    frames=st.lists(st.sampled_from(WIRES), min_size=1, max_size=6),
    cut=st.integers(min_value=0),
    splits=st.lists(st.integers(min_value=1, max_value=40), max_size=8),
)
def test_joining_at_any_byte_loses_only_the_frame_under_way(
    frames: list[bytes], cut: int, splits: list[int]
) -> None:
    stream = b"".join(frames)
    cut %= len(stream)
    starts = [sum(len(f) for f in frames[:i]) for i in range(len(frames))]
    whole = sum(cut <= start + 1 for start in starts)  # past a frame's leading delimiter: cut
    tail, records = stream[cut:], []
    for size in splits:  # the daemon's reads come in chunks of any size
        records.append(_record(Direction.FROM_DEVICE, tail[:size]))
        tail = tail[size:]
    records.append(_record(Direction.FROM_DEVICE, tail))
    entries, tally = _watch(records)
    statuses = [e["status"] for e in entries]
    assert statuses == ["joined"] * statuses.count("joined") + ["ok"] * whole
    assert tally.status() == (0 if whole else EX_DATAERR)
    assert tally.bytes_in == len(stream) - cut


def test_noise_before_any_frame_is_damage_beyond_one_frames_tail() -> None:
    """A device answering at the wrong baud rate: noise, never a frame."""
    noise = bytes(range(1, 200)) * 3 + b"\x00"
    entries, tally = _watch([_record(Direction.FROM_DEVICE, noise + REPLY)])
    assert "dropped" in [e["status"] for e in entries]
    assert tally.status() == DAMAGED


def test_only_the_first_chunk_can_be_a_tail() -> None:
    """Three damaged chunks after the join: the first may be a tail, the others are damage."""
    chunks = REPLY[5:] + b"\x13\x37\x00" + b"junk\x00"
    entries, tally = _watch([_record(Direction.FROM_DEVICE, chunks + REPLY)])
    assert [e["status"] for e in entries] == ["joined", "dropped", "dropped", "ok"]
    assert tally.status() == DAMAGED


def test_a_joined_deck_link_exits_clean_and_a_noisy_one_does_not() -> None:
    reply = s9.command(s9.Cmd.LTC_TIME_DATA, s9.encode_time(s9.TimeData(1, 2, 3, 4)))
    _, joined = _watch([_record(Direction.FROM_DEVICE, reply[1:] + reply)], "sony9pin")
    assert joined.frames == 1 and joined.status() == 0, joined.summary()
    _, noisy = _watch([_record(Direction.FROM_DEVICE, bytes(range(40, 80)) + reply)], "sony9pin")
    assert noisy.status() != 0, noisy.summary()
