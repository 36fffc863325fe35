"""Frames on the serial line: COBS-encoded, 0x00-delimited, CRC-32C protected.

Layout of a frame before COBS encoding (all integers little-endian), see SPEC.md:

    version u8 | flags u8 | type u8 | seq u16 | payload (0..245 bytes) | crc32c u32

On the wire every frame is sent as 0x00, COBS(frame), 0x00. The leading delimiter ends any
garbage already on the line, so noise never costs the frame that follows it.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import NamedTuple

from cobs import cobs
from construct import Int8ul, Int16ul, Struct

from protocols.crc import CRC_SIZE, crc32c
from protocols.errors import FramingError
from protocols.records import require_fixed_layout

FRAME_VERSION = 1
DELIMITER = 0x00

FRAME_HEADER = Struct(
    "version" / Int8ul,  # frame format version, always FRAME_VERSION
    "flags" / Int8ul,  # bits 0-1 kind, bit 2 retransmission, bits 3-7 zero
    "type" / Int8ul,  # message type code (catalogue)
    "seq" / Int16ul,  # request sequence (echoed by its reply) or the device's event sequence
)
HEADER_SIZE = FRAME_HEADER.sizeof()
MAX_FRAME = 254  # largest frame before COBS: keeps COBS overhead to exactly one byte
MAX_PAYLOAD = MAX_FRAME - HEADER_SIZE - CRC_SIZE  # 245
MIN_FRAME = HEADER_SIZE + CRC_SIZE
MAX_ENCODED = MAX_FRAME + 1  # COBS output for a 254-byte frame
MAX_WIRE_FRAME = MAX_ENCODED + 2  # with both delimiters

_FLAG_KIND_MASK = 0x03
_FLAG_RETRY = 0x04
_FLAG_RESERVED = 0xF8

_HEADER = require_fixed_layout(FRAME_HEADER)
_crc_le = struct.Struct("<I")


class Kind(enum.IntEnum):
    """Who sent a frame and why (flags bits 0-1)."""

    REQUEST = 0  # host -> device, answered by exactly one REPLY with the same seq
    REPLY = 1  # device -> host, echoes the request's seq (its type, or NACK)
    EVENT = 2  # device -> host, unsolicited, seq from the device's own event counter


_KINDS = (Kind.REQUEST, Kind.REPLY, Kind.EVENT)


class RejectReason(enum.Enum):
    """Why a delimited chunk of bytes was not accepted as a frame."""

    COBS = "cobs"  # the chunk is not valid COBS
    SHORT = "short"  # shorter than header + CRC
    OVERSIZE = "oversize"  # more bytes than any frame may have before a delimiter
    CRC = "crc"  # frame check sequence mismatch
    VERSION = "version"  # unknown frame format version
    FLAGS = "flags"  # reserved flag bits set or kind 3
    INCOMPLETE = "incomplete"  # the input ended before the chunk's closing delimiter


class Frame(NamedTuple):
    """One checked frame; `offset` is where its bytes began in the received stream."""

    kind: Kind
    msg_type: int
    seq: int
    payload: bytes
    retry: bool = False
    offset: int = 0


class RejectedFrame(NamedTuple):
    """A chunk the deframer dropped, kept so tools can show where and why."""

    reason: RejectReason
    offset: int
    length: int
    raw: bytes  # at most the first MAX_ENCODED bytes

    def as_error(self) -> FramingError:
        return FramingError(f"{self.reason.value}: {self.length} bytes at offset {self.offset}")


def encode_frame(
    kind: Kind, msg_type: int, seq: int, payload: bytes = b"", *, retry: bool = False
) -> bytes:
    """Build the exact bytes to write on the line for one frame."""
    if len(payload) > MAX_PAYLOAD:
        raise FramingError(f"payload of {len(payload)} bytes exceeds the {MAX_PAYLOAD}-byte limit")
    if not 0 <= seq <= 0xFFFF:
        raise FramingError(f"sequence number {seq} does not fit in 16 bits")
    flags = int(kind) | (_FLAG_RETRY if retry else 0)
    body = _HEADER.pack(FRAME_VERSION, flags, msg_type, seq) + payload
    body += _crc_le.pack(crc32c(body))
    encoded: bytes = cobs.encode(body)
    return b"\x00" + encoded + b"\x00"


def decode_frame(encoded: bytes, offset: int = 0) -> Frame | RejectedFrame:
    """Check and split one COBS chunk (without delimiters)."""
    size = len(encoded)
    if size > MAX_ENCODED:
        return RejectedFrame(RejectReason.OVERSIZE, offset, size, encoded[:MAX_ENCODED])
    try:
        raw = cobs.decode(encoded)
    except cobs.DecodeError:
        return RejectedFrame(RejectReason.COBS, offset, size, encoded)
    if len(raw) < MIN_FRAME:
        return RejectedFrame(RejectReason.SHORT, offset, size, encoded)
    if crc32c(memoryview(raw)[:-CRC_SIZE]) != _crc_le.unpack_from(raw, len(raw) - CRC_SIZE)[0]:
        return RejectedFrame(RejectReason.CRC, offset, size, encoded)
    version, flags, msg_type, seq = _HEADER.unpack_from(raw)
    if version != FRAME_VERSION:
        return RejectedFrame(RejectReason.VERSION, offset, size, encoded)
    if flags & _FLAG_RESERVED or flags & _FLAG_KIND_MASK == _FLAG_KIND_MASK:
        return RejectedFrame(RejectReason.FLAGS, offset, size, encoded)
    return Frame(
        _KINDS[flags & _FLAG_KIND_MASK],
        msg_type,
        seq,
        raw[HEADER_SIZE:-CRC_SIZE],
        bool(flags & _FLAG_RETRY),
        offset,
    )


@dataclass(slots=True)
class DeframerStats:
    """Counters a link reports; `resyncs` counts returns to a good frame after rejects."""

    frames: int = 0
    rejected: int = 0
    crc_errors: int = 0
    framing_errors: int = 0
    resyncs: int = 0
    bytes_in: int = 0
    bytes_discarded: int = 0


class Deframer:
    """Turns an arbitrary byte stream into frames and rejects; never raises, never grows.

    Feed it whatever the port returned, split anywhere: the frames are the same. Memory is
    bounded by MAX_ENCODED whatever the input, because a run without a delimiter longer than
    any frame is dropped as it arrives (so its reject keeps its first bytes only when the
    whole run came in one read).
    """

    __slots__ = (
        "_buffer",
        "_buffer_offset",
        "_discard_start",
        "_discarding",
        "_in_error",
        "stats",
    )

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._buffer_offset = 0  # stream offset of _buffer[0]
        self._discarding = 0  # bytes dropped so far from an oversized run
        self._discard_start = 0  # stream offset where that run began
        self._in_error = False
        self.stats = DeframerStats()

    @property
    def buffered(self) -> int:
        """Bytes held while waiting for a delimiter (never more than MAX_ENCODED)."""
        return len(self._buffer)

    def reset(self) -> None:
        """Forget a partial frame, for example when the port is reopened."""
        self._buffer.clear()
        self._discarding = 0

    def finish(self) -> RejectedFrame | None:
        """End of input: what is still held (a partial frame, an oversized run), as rejected.

        A capture that stops mid-frame has bytes nothing else would ever account for.
        """
        held = self._discarding + len(self._buffer)
        if not held:
            return None
        start = self._discard_start if self._discarding else self._buffer_offset
        raw = bytes(self._buffer[:MAX_ENCODED])
        item = RejectedFrame(RejectReason.INCOMPLETE, start, held, raw)
        self._buffer_offset += len(self._buffer)
        self.reset()
        self._reject([], item)
        return item

    def feed(self, data: bytes) -> list[Frame | RejectedFrame]:
        stats = self.stats
        size = len(data)
        stats.bytes_in += size
        out: list[Frame | RejectedFrame] = []
        buffer = self._buffer
        if (
            type(data) is bytes  # a view or a bytearray goes through the buffer, as before
            and not buffer
            and not self._discarding
            and size > 2
            and data[0] == DELIMITER
            and data.find(DELIMITER, 1) == size - 1
        ):
            # A reply read whole, as a port almost always delivers one: decoded straight from
            # the read, without the copies into and out of the buffer.
            self._take(out, data[1:-1], self._buffer_offset + 1)
            self._buffer_offset += size
            return out
        buffer += data
        start = 0
        find = buffer.find
        while True:
            end = find(DELIMITER, start)
            if end < 0:
                break
            if self._discarding:
                length = self._discarding + end - start
                self._discarding = 0
                self._reject(
                    out, RejectedFrame(RejectReason.OVERSIZE, self._discard_start, length, b"")
                )
            elif end > start:
                self._take(out, bytes(buffer[start:end]), self._buffer_offset + start)
            start = end + 1
        if start:
            del buffer[:start]
            self._buffer_offset += start
        if len(buffer) > MAX_ENCODED:
            if not self._discarding:
                self._discard_start = self._buffer_offset
            self._discarding += len(buffer)
            self._buffer_offset += len(buffer)
            buffer.clear()
        return out

    def _take(self, out: list[Frame | RejectedFrame], chunk: bytes, offset: int) -> None:
        """Decode one delimited chunk that began at stream `offset` into `out`."""
        item = decode_frame(chunk, offset)
        if isinstance(item, Frame):
            self.stats.frames += 1
            if self._in_error:
                self._in_error = False
                self.stats.resyncs += 1
            out.append(item)
        else:
            self._reject(out, item)

    def _reject(self, out: list[Frame | RejectedFrame], item: RejectedFrame) -> None:
        stats = self.stats
        stats.rejected += 1
        stats.bytes_discarded += item.length
        if item.reason is RejectReason.CRC:
            stats.crc_errors += 1
        else:
            stats.framing_errors += 1
        self._in_error = True
        out.append(item)
