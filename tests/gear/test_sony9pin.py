"""Sony 9-pin blocks: byte-exact against the public descriptions, round trips, resync."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import sony9pin as s9
from protocols.errors import FramingError, MessageError

# Command bytes from the command table of the "Sony 9-Pin Remote Protocol" summary (DVR-2000
# table, 1996; the copy in MediaNerdStudio/sony9pin-nodejs docs/), checksum per its "lower
# eight bits of the sum of the bytes in the command block" (same rule in Sony9Pin.net's
# README and hideakitai/Sony9PinRemote); status and NAK bits per Sony9PinRemote's Types.h.
VECTORS = [
    (s9.Cmd.STOP, b"", "20 00 20"),
    (s9.Cmd.PLAY, b"", "20 01 21"),
    (s9.Cmd.RECORD, b"", "20 02 22"),
    (s9.Cmd.STANDBY_OFF, b"", "20 04 24"),
    (s9.Cmd.STANDBY_ON, b"", "20 05 25"),
    (s9.Cmd.DEVICE_TYPE_REQUEST, b"", "00 11 11"),
    (s9.Cmd.ACK, b"", "10 01 11"),
    (s9.Cmd.NAK, bytes([s9.NakError.CHECKSUM]), "11 12 04 27"),
    (s9.Cmd.DEVICE_TYPE, bytes.fromhex("f0e0"), "12 11 f0 e0 f3"),  # HyperDeck Studio Mini NTSC
    (s9.Cmd.CURRENT_TIME_SENSE, bytes([s9.TimeSense.LTC]), "61 0c 01 6e"),
    (s9.Cmd.CURRENT_TIME_SENSE, bytes([s9.TimeSense.AUTO]), "61 0c 03 70"),
    (s9.Cmd.STATUS_SENSE, b"\x0a", "61 20 0a 8b"),
    (s9.Cmd.LTC_TIME_DATA, bytes.fromhex("24 59 59 23"), "74 04 24 59 59 23 71"),
    (s9.Cmd.TIME_CODE_PRESET, bytes.fromhex("00 00 00 10"), "44 04 00 00 00 10 58"),
]


@pytest.mark.parametrize(("cmd", "data", "expected"), VECTORS)
def test_byte_exact_vectors(cmd: s9.Cmd, data: bytes, expected: str) -> None:
    wire = s9.command(cmd, data)
    assert wire == bytes.fromhex(expected)
    block = s9.parse_block(wire)
    assert (block.command, block.data) == (cmd, data)


def test_checksum_is_a_sum_not_an_xor() -> None:
    """61 0C 01: sum 0x6E, XOR 0x6C; the XOR variant some code uses is refused."""
    assert s9.checksum(bytes.fromhex("610c01")) == 0x6E
    with pytest.raises(FramingError):
        s9.parse_block(bytes.fromhex("610c016c"))


def test_time_data_is_bcd_with_drop_frame_flag() -> None:
    assert s9.encode_time(s9.TimeData(10, 20, 30, 12)) == bytes.fromhex("12 30 20 10")
    dropped = s9.decode_time(bytes.fromhex("52 00 01 00"))  # bit 6 of the frames byte
    assert dropped == s9.TimeData(0, 1, 0, 12, drop_frame=True)
    with pytest.raises(MessageError):
        s9.decode_time(bytes.fromhex("0a 00 00 00"))


def test_status_bits_where_the_public_layout_puts_them() -> None:
    raw = s9.encode_status(s9.Status(play=True, record=True, stop=False, near_eot=True))
    assert raw[1] == 0b0000_0011 and raw[8] == 0b0010_0000
    assert s9.encode_status(s9.Status(cassette_out=True, local=True))[0] == 0b0010_0001
    assert s9.decode_status(raw[:3], 0).record and not s9.decode_status(raw[2:], 2).record


blocks = st.tuples(st.integers(0, 15), st.integers(0, 255), st.binary(max_size=s9.MAX_DATA))
times = st.builds(
    s9.TimeData,
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
    st.integers(0, 29),
    st.booleans(),
)


@given(blocks)
def test_block_round_trip(spec: tuple[int, int, bytes]) -> None:
    wire = s9.encode(*spec)
    assert len(wire) == len(spec[2]) + 3
    assert s9.parse_block(wire)[:3] == spec


@given(times)
def test_time_round_trip(time: s9.TimeData) -> None:
    assert s9.decode_time(s9.encode_time(time)) == time


@given(st.builds(s9.Status, *(st.booleans() for _ in range(9))))
def test_status_round_trip(status: s9.Status) -> None:
    assert s9.decode_status(s9.encode_status(status)) == status


known = st.tuples(
    st.sampled_from(sorted(s9.KNOWN_GROUPS)), st.integers(0, 255), st.binary(max_size=15)
)


@given(st.lists(known, min_size=1, max_size=6), st.lists(st.integers(0, 400), max_size=10))
def test_same_blocks_whatever_the_read_boundaries(
    specs: list[tuple[int, int, bytes]], cuts: list[int]
) -> None:
    stream = b"".join(s9.encode(*spec) for spec in specs)
    deframer = s9.Deframer()
    out: list[object] = []
    last = 0
    for cut in [*sorted({c % (len(stream) + 1) for c in cuts}), len(stream)]:
        out += deframer.feed(stream[last:cut])
        last = cut
    assert [b[:3] for b in out if isinstance(b, s9.Block)] == specs


@given(st.binary(min_size=1, max_size=40), st.lists(known, min_size=1, max_size=4))
def test_resynchronises_after_noise_and_a_pause(
    noise: bytes, specs: list[tuple[int, int, bytes]]
) -> None:
    """Noise, then the line idles past the 10 ms inter-byte limit: every later block is found."""
    deframer = s9.Deframer()
    first = deframer.feed(noise, now=0.0)
    out = deframer.feed(b"".join(s9.encode(*spec) for spec in specs), now=0.05)
    assert [b[:3] for b in out if isinstance(b, s9.Block)] == specs
    found = sum(len(b.data) + 3 for b in first + out if isinstance(b, s9.Block))
    assert deframer.stats.bytes_in == deframer.stats.bytes_discarded + found


def test_resynchronises_without_a_pause_by_sliding() -> None:
    """A corrupted block costs one byte at a time until the next good block lines up."""
    good = s9.command(s9.Cmd.PLAY) + s9.command(s9.Cmd.STATUS_SENSE, b"\x0a")
    corrupted = bytearray(s9.command(s9.Cmd.LTC_TIME_DATA, bytes(4)))
    corrupted[3] ^= 0x40
    deframer = s9.Deframer()
    out = deframer.feed(bytes(corrupted) + good * 2)
    names = [b.command for b in out if isinstance(b, s9.Block)]
    assert names[-2:] == [s9.Cmd.PLAY, s9.Cmd.STATUS_SENSE]
    assert deframer.stats.checksum_errors >= 1 and deframer.stats.resyncs == 1


def test_a_gap_inside_a_block_voids_it() -> None:
    deframer = s9.Deframer()
    wire = s9.command(s9.Cmd.PLAY)
    assert deframer.feed(wire[:2], now=0.0) == []
    out = deframer.feed(wire[2:] + wire, now=0.02)
    assert isinstance(out[0], s9.Rejected) and out[0].reason == "gap"
    assert [b.command for b in out if isinstance(b, s9.Block)] == [s9.Cmd.PLAY]


def test_encode_refuses_what_a_block_cannot_carry() -> None:
    with pytest.raises(FramingError):
        s9.encode(2, 0, bytes(16))
    with pytest.raises(FramingError):
        s9.status_sense(0, 0)


# -- the fast paths against the construct declarations they implement ----------------------


@given(blocks)
def test_encode_is_the_declared_block(spec: tuple[int, int, bytes]) -> None:
    group, cmd2, data = spec
    body = {"header": {"group": group, "count": len(data)}, "cmd2": cmd2, "data": data}
    assert s9.encode(*spec) == s9.BLOCK.build({"body": {"value": body}, "checksum": None})


@given(st.binary(min_size=4, max_size=4))
def test_time_decoder_is_the_declared_layout(raw: bytes) -> None:
    parsed = s9.TIME_DATA.parse(raw)
    fields = ("frames", "seconds", "minutes", "hours")
    if any(parsed[k].units > 9 for k in fields):
        with pytest.raises(MessageError):
            s9.decode_time(raw)
        return
    time = s9.decode_time(raw)
    assert [getattr(time, k) for k in fields] == [parsed[k].tens * 10 + parsed[k].units
                                                  for k in fields]  # fmt: skip
    assert time.drop_frame == parsed.frames.df


@given(times)
def test_time_encoder_is_the_declared_layout(time: s9.TimeData) -> None:
    def digits(value: int) -> dict[str, int]:
        return {"tens": value // 10, "units": value % 10}

    declared = s9.TIME_DATA.build({
        "frames": {"cf": False, "df": time.drop_frame, **digits(time.frames)},
        "seconds": {"field": False, **digits(time.seconds)},
        "minutes": {"bgf": False, **digits(time.minutes)},
        "hours": {"flags": 0, **digits(time.hours)},
    })  # fmt: skip
    assert s9.encode_time(time) == declared


@given(st.binary(min_size=10, max_size=10))
def test_status_decoder_is_the_declared_layout(raw: bytes) -> None:
    parsed = s9.STATUS_DATA.parse(raw)
    status = s9.decode_status(raw)
    for byte in ("b0", "b1", "b8"):
        for name, value in parsed[byte].items():
            if not name.startswith("_") and hasattr(status, name):
                assert getattr(status, name) == value, name
