"""Sony 9-pin (RS-422) deck control: command blocks, time data, status data, a deframer.

Line: 38,400 baud, 8 data bits, odd parity, 1 stop bit (11 bits a byte). A command block is

    CMD-1 (high nibble: function group, low nibble: data count 0-15) | CMD-2 | DATA x count |
    CHECKSUM (low 8 bits of the sum of every preceding byte of the block; not XOR)

The controller speaks first; the device answers within 9 ms with ACK (10 01), NAK (11 12 +
error bits) or a data reply; a gap of more than 10 ms between the bytes of one block voids
it. Sources (cited in SPEC.md, "Sony 9-pin"): the "Sony 9-Pin Remote Protocol" summary
(DVR-2000 command table, 1996), Blackmagic's HyperDeck manual (RS-422 developer section),
Sony9Pin.net (lathoub) and Sony9PinRemote (hideakitai) for the status and NAK bit layout.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple

from construct import (
    BitsInteger,
    BitStruct,
    Bytes,
    Checksum,
    ConstructError,
    Flag,
    Int8ub,
    Nibble,
    RawCopy,
    Struct,
    this,
)

from protocols.errors import FramingError, MessageError

BAUD = 38_400
BITS_PER_BYTE = 11  # start, 8 data, odd parity, stop
INTER_BYTE_LIMIT_S = 0.010  # a longer gap inside a block voids it
MAX_DATA = 15

HEADER = BitStruct("group" / Nibble, "count" / Nibble)
BLOCK = Struct(
    "body"
    / RawCopy(
        Struct(
            "header" / HEADER,
            "cmd2" / Int8ub,
            "data" / Bytes(this.header.count),
        )
    ),
    "checksum" / Checksum(Int8ub, lambda raw: sum(raw) & 0xFF, this.body.data),
)


class Group(enum.IntEnum):
    """CMD-1 high nibble: the function group and so the direction."""

    SYSTEM = 0x0  # controller -> device
    SYSTEM_RETURN = 0x1  # device -> controller: ACK, NAK, device type
    TRANSPORT = 0x2
    PRESET = 0x4
    SENSE = 0x6
    SENSE_RETURN = 0x7


KNOWN_GROUPS = frozenset(int(g) for g in Group) | {0x8, 0xA}  # Blackmagic's extensions


class Cmd(enum.Enum):
    """(group, CMD-2) of every block Cupola sends or expects back."""

    LOCAL_DISABLE = (Group.SYSTEM, 0x0C)
    DEVICE_TYPE_REQUEST = (Group.SYSTEM, 0x11)
    LOCAL_ENABLE = (Group.SYSTEM, 0x1D)
    ACK = (Group.SYSTEM_RETURN, 0x01)
    DEVICE_TYPE = (Group.SYSTEM_RETURN, 0x11)
    NAK = (Group.SYSTEM_RETURN, 0x12)
    STOP = (Group.TRANSPORT, 0x00)
    PLAY = (Group.TRANSPORT, 0x01)
    RECORD = (Group.TRANSPORT, 0x02)
    STANDBY_OFF = (Group.TRANSPORT, 0x04)
    STANDBY_ON = (Group.TRANSPORT, 0x05)
    EJECT = (Group.TRANSPORT, 0x0F)
    TIME_CODE_PRESET = (Group.PRESET, 0x04)
    CURRENT_TIME_SENSE = (Group.SENSE, 0x0C)
    STATUS_SENSE = (Group.SENSE, 0x20)
    TIMER1_DATA = (Group.SENSE_RETURN, 0x00)
    LTC_TIME_DATA = (Group.SENSE_RETURN, 0x04)
    VITC_TIME_DATA = (Group.SENSE_RETURN, 0x06)
    STATUS_DATA = (Group.SENSE_RETURN, 0x20)


_BY_KEY = {(int(c.value[0]), c.value[1]): c for c in Cmd}


class TimeSense(enum.IntFlag):
    """The one data byte of CURRENT TIME SENSE (61 0C)."""

    LTC = 0x01
    VITC = 0x02
    AUTO = 0x03  # LTC or VITC, whichever the device reads
    TIMER1 = 0x04


class NakError(enum.IntFlag):
    """NAK error bits (11 12 xx)."""

    UNDEFINED_COMMAND = 0x01
    CHECKSUM = 0x04
    PARITY = 0x10
    OVERRUN = 0x20
    FRAMING = 0x40
    TIMEOUT = 0x80


class Block(NamedTuple):
    """One checked command block; `offset` is where it began in the received stream."""

    group: int
    cmd2: int
    data: bytes
    offset: int = 0

    @property
    def command(self) -> Cmd | None:
        return _BY_KEY.get((self.group, self.cmd2))

    def name(self) -> str:
        command = self.command
        return command.name if command else f"{self.group:X}{len(self.data):X} {self.cmd2:02X}"


def encode(group: int, cmd2: int, data: bytes = b"") -> bytes:
    """The exact bytes of one block, checksum included (BLOCK's layout; the tests check this
    path against construct's own build, byte for byte)."""
    if not 0 <= group <= 0xF or not 0 <= cmd2 <= 0xFF:
        raise FramingError(f"group {group} / CMD-2 {cmd2} out of range")
    if len(data) > MAX_DATA:
        raise FramingError(f"{len(data)} data bytes: a block carries at most {MAX_DATA}")
    body = bytes((group << 4 | len(data), cmd2)) + data
    return body + bytes((sum(body) & 0xFF,))


def command(cmd: Cmd, data: bytes = b"") -> bytes:
    return encode(int(cmd.value[0]), cmd.value[1], data)


def checksum(body: bytes) -> int:
    """Low 8 bits of the sum of the bytes: the 9-pin block check."""
    return sum(body) & 0xFF


# -- time data (BCD, as in CUE UP WITH DATA / TIME CODE PRESET / time data replies) ---------

TIME_DATA = Struct(
    "frames" / BitStruct("cf" / Flag, "df" / Flag, "tens" / BitsInteger(2), "units" / Nibble),
    "seconds" / BitStruct("field" / Flag, "tens" / BitsInteger(3), "units" / Nibble),
    "minutes" / BitStruct("bgf" / Flag, "tens" / BitsInteger(3), "units" / Nibble),
    "hours" / BitStruct("flags" / BitsInteger(2), "tens" / BitsInteger(2), "units" / Nibble),
)


@dataclass(frozen=True, slots=True)
class TimeData:
    hours: int
    minutes: int
    seconds: int
    frames: int
    drop_frame: bool = False

    def to_frames(self, fps: int) -> int:
        return ((self.hours * 60 + self.minutes) * 60 + self.seconds) * fps + self.frames

    @classmethod
    def from_frames(cls, count: int, fps: int) -> TimeData:
        count %= 24 * 3600 * fps
        seconds, frames = divmod(count, fps)
        return cls(seconds // 3600, seconds // 60 % 60, seconds % 60, frames)

    def __str__(self) -> str:
        sep = ";" if self.drop_frame else ":"
        return f"{self.hours:02d}:{self.minutes:02d}:{self.seconds:02d}{sep}{self.frames:02d}"


def encode_time(time: TimeData) -> bytes:
    """TIME_DATA's layout (tests check it against construct's build)."""
    if not (time.hours < 24 and time.minutes < 60 and time.seconds < 60 and time.frames < 40):
        raise MessageError(f"time {time} is not a timecode")
    return bytes((
        (0x40 if time.drop_frame else 0) | time.frames // 10 << 4 | time.frames % 10,
        time.seconds // 10 << 4 | time.seconds % 10,
        time.minutes // 10 << 4 | time.minutes % 10,
        time.hours // 10 << 4 | time.hours % 10,
    ))  # fmt: skip


def decode_time(data: bytes) -> TimeData:
    """TIME_DATA's layout (tests check it against construct's parse)."""
    if len(data) < 4:
        raise MessageError(f"time data needs 4 bytes, got {len(data)}")
    f, s, m, h = data[0], data[1], data[2], data[3]
    if (f & 0xF) > 9 or (s & 0xF) > 9 or (m & 0xF) > 9 or (h & 0xF) > 9:
        raise MessageError(f"time data {data[:4].hex(' ')} is not BCD")
    return TimeData(
        hours=(h >> 4 & 0x3) * 10 + (h & 0xF),
        minutes=(m >> 4 & 0x7) * 10 + (m & 0xF),
        seconds=(s >> 4 & 0x7) * 10 + (s & 0xF),
        frames=(f >> 4 & 0x3) * 10 + (f & 0xF),
        drop_frame=bool(f & 0x40),
    )


# -- status data (61 20 XY -> 7Y 20 + Y bytes from byte X) ------------------------------------

STATUS_BYTES = 10
STATUS_DATA = Struct(
    "b0"
    / BitStruct(
        "_7" / Flag,
        "_6" / Flag,
        "cassette_out" / Flag,
        "_4" / Flag,
        "_3" / Flag,
        "hard_error" / Flag,
        "_1" / Flag,
        "local" / Flag,
    ),
    "b1"
    / BitStruct(
        "standby" / Flag,
        "_6" / Flag,
        "stop" / Flag,
        "eject" / Flag,
        "rewind" / Flag,
        "fast_forward" / Flag,
        "record" / Flag,
        "play" / Flag,
    ),
    "b2_7" / Bytes(6),
    "b8"
    / BitStruct(
        "_7" / Flag,
        "_6" / Flag,
        "near_eot" / Flag,
        "eot" / Flag,
        "_3" / Flag,
        "_2" / Flag,
        "_1" / Flag,
        "record_inhibit" / Flag,
    ),
    "b9" / Bytes(1),
)


@dataclass(frozen=True, slots=True)
class Status:
    """The status bits Cupola reads: transport, media present, near end, remote enabled."""

    play: bool = False
    record: bool = False
    stop: bool = True
    standby: bool = False
    local: bool = False  # panel only: remote control refused
    cassette_out: bool = False  # no media
    hard_error: bool = False
    near_eot: bool = False  # media nearly full (< 3 min on a HyperDeck)
    eot: bool = False  # media full


# (byte, bit) of each Status field, as STATUS_DATA declares them
_STATUS_BITS = {
    "local": (0, 0), "hard_error": (0, 2), "cassette_out": (0, 5),
    "play": (1, 0), "record": (1, 1), "stop": (1, 5), "standby": (1, 7),
    "eot": (8, 4), "near_eot": (8, 5),
}  # fmt: skip


def encode_status(status: Status) -> bytes:
    """The 10 status bytes (STATUS_DATA's layout); bits Cupola has no use for are zero."""
    out = bytearray(STATUS_BYTES)
    for name, (byte, bit) in _STATUS_BITS.items():
        if getattr(status, name):
            out[byte] |= 1 << bit
    return bytes(out)


def decode_status(data: bytes, first: int = 0) -> Status:
    """Status from a reply holding bytes `first`.. of the 10; missing bytes read as zero."""
    full = bytearray(STATUS_BYTES)
    full[first : first + len(data)] = data[: STATUS_BYTES - first]
    return Status(**{n: bool(full[b] >> bit & 1) for n, (b, bit) in _STATUS_BITS.items()})


def status_sense(first: int = 0, count: int = STATUS_BYTES) -> bytes:
    """61 20 XY: ask for `count` status bytes from byte `first`."""
    if not (0 <= first <= 0xF and 1 <= count <= MAX_DATA):
        raise FramingError(f"status bytes {first}+{count} cannot be asked for")
    return command(Cmd.STATUS_SENSE, bytes([first << 4 | count]))


# -- the deframer ---------------------------------------------------------------------------


class Rejected(NamedTuple):
    """Bytes the deframer dropped, and why."""

    reason: str  # "checksum", "group" (no known function group) or "gap" (block left unfinished)
    offset: int
    raw: bytes


@dataclass(slots=True)
class DeframerStats:
    blocks: int = 0
    rejected: int = 0
    checksum_errors: int = 0
    bytes_in: int = 0
    bytes_discarded: int = 0
    resyncs: int = 0


class Deframer:
    """Bytes -> blocks, never raising, never holding more than one block.

    There is no delimiter: a block's length is in its first byte. A bad checksum or an
    unknown group costs one byte, then the search starts again at the next; a silence longer
    than the 10 ms inter-byte limit (pass `now`) voids a partial block, as a real device does.
    So the first block after a noise burst and a pause is always found.
    """

    __slots__ = ("_buffer", "_in_error", "_last_at", "_offset", "stats")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._offset = 0
        self._last_at: float | None = None
        self._in_error = False
        self.stats = DeframerStats()

    def reset(self) -> None:
        self._offset += len(self._buffer)
        self._buffer.clear()

    def feed(self, data: bytes, now: float | None = None) -> list[Block | Rejected]:
        out: list[Block | Rejected] = []
        if now is not None:
            last, self._last_at = self._last_at, now
            if self._buffer and last is not None and now - last > INTER_BYTE_LIMIT_S:
                self._drop(out, len(self._buffer), "gap")
        self.stats.bytes_in += len(data)
        buffer = self._buffer
        buffer += data
        while buffer:
            head = buffer[0]
            if head >> 4 not in KNOWN_GROUPS:
                self._drop(out, 1, "group")
                continue
            size = (head & 0x0F) + 3
            if len(buffer) < size:
                break
            if sum(buffer[: size - 1]) & 0xFF != buffer[size - 1]:
                self.stats.checksum_errors += 1
                self._drop(out, 1, "checksum")
                continue
            out.append(Block(head >> 4, buffer[1], bytes(buffer[2 : size - 1]), self._offset))
            self.stats.blocks += 1
            if self._in_error:
                self._in_error = False
                self.stats.resyncs += 1
            del buffer[:size]
            self._offset += size
        return out

    def _drop(self, out: list[Block | Rejected], count: int, reason: str) -> None:
        raw = bytes(self._buffer[:count])
        del self._buffer[:count]
        if (
            out
            and isinstance(out[-1], Rejected)
            and out[-1].reason == reason
            and (out[-1].offset + len(out[-1].raw) == self._offset)
        ):
            out[-1] = Rejected(reason, out[-1].offset, out[-1].raw + raw)
        else:
            out.append(Rejected(reason, self._offset, raw))
            self.stats.rejected += 1
        self._offset += count
        self.stats.bytes_discarded += count
        self._in_error = True


def parse_block(raw: bytes) -> Block:
    """One whole block, checked by its construct declaration (for tools and tests)."""
    try:
        parsed = BLOCK.parse(raw)
    except ConstructError as exc:
        raise FramingError(f"not a 9-pin block: {exc}") from exc
    body = parsed.body.value
    if len(raw) != body.header.count + 3:
        raise FramingError(f"{len(raw)} bytes for a block of {body.header.count + 3}")
    return Block(body.header.group, body.cmd2, bytes(body.data))
