"""The link tap: a device link's bytes, both directions, as the daemon wrote and read them.

A client connects to the daemon's tap socket (a Unix socket beside its state) and sends one
line, the device name. The daemon answers one JSON line (`{"device": ..., "baud": ...}`, or
`{"error": "..."}` and closes), then a record for every chunk of bytes on that link until the
client hangs up:

    magic u16 (0xC7A9) | direction u8 (0 to the device, 1 from it) | wall_ns u64 | length u16 | data

all big-endian; `wall_ns` is the daemon's clock when the bytes were written or read. The tap
never slows the link: a listener that does not keep up loses records, and the next record it
gets is a LOST one (direction 2) whose data, a u32, counts them.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from construct import Bytes, Const, Int8ub, Int16ub, Int64ub, Struct, this

TAP_MAGIC = 0xC7A9
MAX_CHUNK = 4096  # a longer read or write is sent as several records
MAX_REQUEST = 64  # the device-name line a client sends

TAP_HEADER = Struct(
    "magic" / Const(TAP_MAGIC, Int16ub),
    "direction" / Int8ub,
    "wall_ns" / Int64ub,
    "length" / Int16ub,
)
TAP_RECORD = Struct(*TAP_HEADER.subcons, "data" / Bytes(this.length))
HEADER_SIZE = TAP_HEADER.sizeof()


class Direction(enum.IntEnum):
    TO_DEVICE = 0
    FROM_DEVICE = 1
    LOST = 2  # the listener fell behind; data: u32 records lost


class TapRecord(NamedTuple):
    direction: Direction
    wall_ns: int
    data: bytes


class TapFormatError(ValueError):
    """The tap stream is not what a Cupola daemon sends."""


def build_records(direction: Direction, wall_ns: int, data: bytes) -> bytes:
    """One or more records carrying `data` (split at MAX_CHUNK)."""
    return b"".join(
        TAP_RECORD.build(
            {"direction": direction, "wall_ns": wall_ns, "length": len(part), "data": part}
        )
        for part in (data[i : i + MAX_CHUNK] for i in range(0, max(len(data), 1), MAX_CHUNK))
    )


class TapReader:
    """Records from a byte stream fed in arbitrary pieces."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[TapRecord]:
        self._buffer += data
        records = []
        while len(self._buffer) >= HEADER_SIZE:
            try:
                header = TAP_HEADER.parse(bytes(self._buffer[:HEADER_SIZE]))
            except Exception as exc:  # construct's ConstError and friends
                raise TapFormatError(f"not a tap stream: {exc}") from None
            end = HEADER_SIZE + header.length
            if len(self._buffer) < end:
                break
            try:
                direction = Direction(header.direction)
            except ValueError:
                raise TapFormatError(f"unknown tap direction {header.direction}") from None
            data = bytes(self._buffer[HEADER_SIZE:end])
            records.append(TapRecord(direction, header.wall_ns, data))
            del self._buffer[:end]
        return records
