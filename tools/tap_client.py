"""`cupola decode --tap SOCKET --device NAME`: a device link watched live through the daemon.

The daemon keeps the port; its link tap (firmware_host/link/tap.py, protocols/tap.py) sends
every chunk it writes to or reads from the device, stamped with its clock. Each direction is
its own byte stream, deframed and decoded on its own, so a frame is never cut in two by
the other side's bytes; lines come out in the order the daemon saw the bytes.
"""

from __future__ import annotations

import datetime
import json
import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from firmware_host.link.tap import unix_address
from protocols import enttec
from protocols import modbus_rtu as mb
from protocols import sony9pin as s9
from protocols.framing import MAX_WIRE_FRAME
from protocols.tap import Direction, TapFormatError, TapReader, TapRecord
from tools.decode import StreamDecoder, format_line
from tools.exits import DataError, IoError, NoInputError, reason
from tools.gear_decode import GearDecoder, format_gear_line

ARROWS = {Direction.TO_DEVICE: "->", Direction.FROM_DEVICE: "<-"}
NAMES = {Direction.TO_DEVICE: "to_device", Direction.FROM_DEVICE: "from_device"}


def read_tap(path: Path, device: str) -> Iterator[TapRecord]:
    """The tap's records for `device` until the daemon closes it (or Ctrl-C)."""
    link = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with unix_address(path) as address:
            link.connect(address)
    except OSError as exc:
        link.close()
        raise NoInputError(
            f"cannot reach the link tap at {path}: {reason(exc)} (is the daemon running? its "
            "socket is node.tap_socket, tap.sock in its state folder by default)"
        ) from None
    with link, link.makefile("rb") as stream:
        try:
            link.sendall(device.encode() + b"\n")
            hello = json.loads(stream.readline() or b"{}")
        except (OSError, ValueError) as exc:
            raise IoError(f"link tap at {path}: no answer ({exc})") from None
        if "error" in hello or "device" not in hello:
            raise DataError(f"link tap: {hello.get('error', 'the daemon closed the tap')}")
        records = TapReader()
        try:
            while chunk := stream.read1(65536):
                yield from records.feed(chunk)
        except TapFormatError as exc:
            raise DataError(f"link tap at {path}: {exc}") from None
        except OSError as exc:
            raise IoError(f"link tap at {path}: {reason(exc)}") from None


def tap_entries(records: Iterator[TapRecord], protocol: str = "native") -> Iterator[dict[str, Any]]:
    """Decoded frames (and drops) of both directions, each marked with its direction and time
    (real gear: each direction through its protocol's own decoder, tools/gear_decode.py)."""
    decoders: dict[Direction, StreamDecoder | GearDecoder] = {
        direction: StreamDecoder()
        if protocol == "native"
        else GearDecoder(
            protocol, "to-device" if direction is Direction.TO_DEVICE else "from-device"
        )
        for direction in ARROWS
    }
    joins = {direction: _Join(JOIN_LIMIT[protocol]) for direction in ARROWS}
    for record in records:
        wall = record.wall_ns / 1e9
        if record.direction is Direction.LOST:
            (lost,) = struct.unpack(">I", record.data[:4].rjust(4, b"\0"))
            yield {"status": "lost", "records": lost, "wall": wall}
            continue
        join = joins[record.direction]
        for entry in decoders[record.direction].feed(record.data):
            yield {
                **join.judge(entry),
                "direction": NAMES[record.direction],
                "wall": wall,
                "bytes": len(record.data),
            }


# The most bytes a reader can join in the middle of: one frame (block, message, ADU) as sent.
JOIN_LIMIT = {
    "native": MAX_WIRE_FRAME,
    "sony9pin": 3 + s9.MAX_DATA,  # two command bytes, data, checksum
    "enttec-dmx": 5 + enttec.MAX_DATA,  # start, label, two length bytes, data, end
    "modbus-rtu": mb.MAX_ADU,
}


class _Join:
    """A reader joins a live link at any byte: what comes before a direction's first whole
    frame is the tail of a frame sent before it joined, not damage on the wire. Only so much
    is: from the direction's first byte on, contiguous, at most one frame long; anything
    else (noise, a wrong baud rate, an oversize run) is damage as anywhere else."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.joined = 0  # bytes taken for a tail so far
        self.joining = True  # until the first whole frame or the first damage

    def judge(self, entry: dict[str, Any]) -> dict[str, Any]:
        if not self.joining:
            return entry
        if entry["status"] != "dropped":
            self.joining = False
            return {**entry, "resync": False}  # what came before was no loss of sync
        end = self.joined + entry["length"]
        if entry["offset"] != self.joined or end > self.limit or entry["reason"] == "oversize":
            self.joining = False
            return entry
        self.joined = end
        return {**entry, "status": "joined"}


def format_tap_line(entry: dict[str, Any], protocol: str = "native") -> str:
    clock = datetime.datetime.fromtimestamp(entry["wall"], datetime.UTC).strftime("%H:%M:%S.%f")
    if entry["status"] == "lost":
        return f"{clock}     !! TAP LOST {entry['records']} records (this reader fell behind)"
    arrow = "->" if entry["direction"] == "to_device" else "<-"
    if entry["status"] == "joined":
        tail = f"{entry['length']} bytes: the tail of a frame begun before joining"
        return f"{clock} {arrow} .. {tail}"
    line = format_line(entry) if protocol == "native" else format_gear_line(entry)
    return f"{clock} {arrow} {line}"
