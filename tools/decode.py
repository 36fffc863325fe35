"""`cupola decode`: show every frame of a capture, decoded, with drops and resyncs marked.

Input is raw bytes (a file, or stdin), a hex dump (`--hex`: plain hex, `xxd` or `hexdump -C`
output), a live port (`--port PATH`, taking it), or a link the daemon holds, watched through its
tap (`--tap SOCKET --device NAME`, tools/tap_client.py: both directions, stamped). One line
per frame or dropped chunk; `--json` for scripts. The first good frame after dropped bytes is
marked as a resynchronisation.

The closing summary accounts for every byte read: in frames, dropped (including a chunk the
input ended in the middle of) or delimiters. Exit status: 0 every byte was a good frame or a
delimiter; 1 some frames decoded but bytes were dropped or frames malformed; 65 (EX_DATAERR)
not one frame decoded (random bytes, the wrong baud rate, an empty capture).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from firmware_host.devices.offline_reasons import humanise
from protocols.catalogue import decode_any
from protocols.errors import ProtocolError
from protocols.framing import Deframer, Frame, RejectedFrame
from protocols.records import to_jsonable
from tools.exits import (
    EX_DATAERR,
    DataError,
    IoError,
    NoInputError,
    UsageError,
    read_input,
    reason,
)

DAMAGED = 1  # exit status: frames decoded, but some bytes were garbage

_XXD = re.compile(r"^([0-9a-fA-F]{7,16}): (.*)$")
_HEXDUMP = re.compile(r"^([0-9a-fA-F]{7,16})(?:\s+(.*?))?\s*(?:\|.*\|)?\s*$")
_HEX_PREFIX = re.compile(r"0[xX]")
_NOT_HEX = re.compile(r"[^0-9a-fA-F]")


class HexDumpError(DataError):
    """The text is not a hex dump we can read; the message says where."""


def _hex_bytes(text: str, number: int) -> bytes:
    digits = _NOT_HEX.sub("", _HEX_PREFIX.sub("", text))
    if len(digits) % 2:
        raise HexDumpError(f"line {number}: odd number of hex digits in {text.strip()!r}")
    return bytes.fromhex(digits)


def parse_hex(text: str) -> bytes:
    """Bytes from plain hex ("00 05 01", "0x00,0x05"), `xxd` or `hexdump -C` output."""
    lines = [line.split("#", 1)[0].rstrip() for line in text.splitlines()]
    lines = [line for line in lines if line.strip()]
    xxd = [_XXD.match(line) for line in lines]
    if lines and all(xxd):
        return b"".join(_hex_bytes(m.group(2).split("  ")[0], n) for n, m in enumerate(xxd, 1) if m)
    if lines and any(line.endswith("|") for line in lines):
        return _parse_hexdump_c(lines)
    return b"".join(_hex_bytes(line, n) for n, line in enumerate(lines, 1))


def _parse_hexdump_c(lines: list[str]) -> bytes:
    """`hexdump -C`: offsets, 16 bytes, an ASCII column; `*` elides repeated lines."""
    out = bytearray()
    previous = b""
    repeat = False
    for number, line in enumerate(lines, 1):
        if line.strip() == "*":
            repeat = True
            continue
        match = _HEXDUMP.match(line)
        if not match:
            raise HexDumpError(f"line {number}: not hexdump -C output: {line.strip()!r}")
        offset = int(match.group(1), 16)
        if repeat and previous:
            while len(out) < offset:
                out += previous[: offset - len(out)]
            repeat = False
        previous = _hex_bytes(match.group(2) or "", number)
        out += previous
    return bytes(out)


class StreamDecoder:
    """The frames and dropped chunks of one byte stream, fed in pieces as they come."""

    def __init__(self) -> None:
        self._deframer = Deframer()
        self._after_drop = False

    def feed(self, chunk: bytes) -> Iterator[dict[str, Any]]:
        for item in self._deframer.feed(chunk):
            yield self._entry(item)

    def finish(self) -> Iterator[dict[str, Any]]:
        """The end of input: a chunk cut off mid-frame is reported."""
        if (tail := self._deframer.finish()) is not None:
            yield self._entry(tail)

    def _entry(self, item: Frame | RejectedFrame) -> dict[str, Any]:
        if isinstance(item, RejectedFrame):
            self._after_drop = True
            return {
                "offset": item.offset,
                "status": "dropped",
                "reason": item.reason.value,
                "length": item.length,
                "raw": item.raw.hex(),
            }
        entry: dict[str, Any] = {
            "offset": item.offset,
            "status": "ok",
            "resync": self._after_drop,
            "kind": item.kind.name.lower(),
            "type_code": item.msg_type,
            "seq": item.seq,
            "retry": item.retry,
        }
        self._after_drop = False
        try:
            name, body = decode_any(item)
            entry["type"] = name
            entry["body"] = to_jsonable(body)
        except ProtocolError as exc:
            entry["status"] = "malformed"
            entry["error"] = str(exc)
            entry["payload"] = item.payload.hex()
        return entry


def decode_stream(chunks: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """One dict per frame or dropped chunk, in stream order; the end of input flushes."""
    decoder = StreamDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.finish()


def format_line(entry: dict[str, Any]) -> str:
    offset = f"{entry['offset']:>8}"
    if entry["status"] == "dropped":
        return f"{offset}  !! DROP {entry['reason'].upper():<10} {entry['length']} bytes"
    mark = "~~ RESYNC " if entry.get("resync") else ""
    kind = entry["kind"].upper() + ("+RETRY" if entry["retry"] else "")
    head = f"{offset}  {mark}{kind:<13} seq={entry['seq']:<5}"
    if entry["status"] == "malformed":
        return f"{head} type=0x{entry['type_code']:02X}  MALFORMED: {entry['error']}"
    body = entry["body"]
    fields = " ".join(f"{k}={v}" for k, v in body.items()) if isinstance(body, dict) else ""
    return f"{head} {entry['type']:<20} {fields}"


@dataclass
class Tally:
    """Every byte read, accounted for: in frames, dropped, or a delimiter."""

    bytes_in: int = 0
    delimiters: int = 0
    frames: int = 0
    malformed: int = 0
    dropped_chunks: int = 0
    dropped_bytes: int = 0
    resyncs: int = 0
    lost_records: int = 0  # --tap: records the daemon could not send this reader
    joined_bytes: int = 0  # --tap: the tail of a frame already under way when the reader joined
    delimited: bool = True  # native frames: 0x00 delimiters; foreign protocols have none

    def count_input(self, chunk: bytes) -> bytes:
        self.bytes_in += len(chunk)
        self.delimiters += chunk.count(0) if self.delimited else 0
        return chunk

    def count(self, entry: dict[str, Any]) -> None:
        if entry["status"] == "lost":  # a tap reader that fell behind: bytes never seen
            self.lost_records += entry["records"]
            return
        if entry["status"] == "joined":
            self.joined_bytes += entry["length"]
            return
        if entry["status"] == "dropped":
            self.dropped_chunks += 1
            self.dropped_bytes += entry["length"]
            return
        self.frames += 1
        self.malformed += entry["status"] == "malformed"
        self.resyncs += bool(entry.get("resync"))

    def summary(self) -> str:
        framed = self.bytes_in - self.dropped_bytes - self.joined_bytes - self.delimiters
        return (
            f"{self.bytes_in} bytes: {framed} in {self.frames} frames "
            f"({self.malformed} malformed), {self.dropped_bytes} dropped in "
            f"{self.dropped_chunks} chunks, {self.delimiters} delimiters; {self.resyncs} resyncs"
            + (f"; {self.joined_bytes} before the first whole frame" if self.joined_bytes else "")
            + (f"; {self.lost_records} tap records lost" if self.lost_records else "")
        )

    def status(self) -> int:
        if self.frames == 0:
            return EX_DATAERR
        return DAMAGED if self.dropped_bytes or self.malformed else 0


def _read_file(source: BinaryIO, size: int = 65536) -> Iterator[bytes]:
    while chunk := source.read(size):
        yield chunk


def _read_path(path: Path) -> Iterator[bytes]:
    try:
        source = path.open("rb")
    except OSError as exc:
        raise NoInputError(f"{path}: cannot read: {reason(exc)}") from None
    with source:
        try:
            yield from _read_file(source)
        except OSError as exc:
            raise IoError(f"{path}: reading failed: {reason(exc)}") from None


def _read_port(path: str, baud: int) -> Iterator[bytes]:
    import serial  # noqa: PLC0415 - only the live mode needs pyserial

    try:
        port = serial.Serial(path, baud, timeout=0.2)
    except (serial.SerialException, ValueError) as exc:
        raise NoInputError(f"cannot open port {path}: {_port_reason(exc)}") from None
    # pyserial drops what arrived while it opened the port: what comes from now on is read
    print(f"watching {path} at {baud} baud; Ctrl-C stops", file=sys.stderr, flush=True)
    with port:
        while True:
            try:
                chunk = port.read(4096)
            except serial.SerialException as exc:
                raise IoError(f"port {path}: {humanise(str(exc))}") from None
            if chunk:
                yield chunk


def _port_reason(exc: Exception) -> str:
    errno = getattr(exc, "errno", None)
    return os.strerror(errno) if errno else humanise(str(exc))


def _hex_text(source: Path | None) -> str:
    data = read_input(source) if source and str(source) != "-" else sys.stdin.buffer.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HexDumpError(
            f"not a hex dump: byte 0x{data[exc.start]:02x} at offset {exc.start} is not text "
            "(without --hex the input is read as raw bytes)"
        ) from None


def run(
    source: Path | None,
    *,
    hex_input: bool,
    port: str | None,
    baud: int,
    as_json: bool,
    tap: Path | None = None,
    device: str | None = None,
    protocol: str = "native",
    direction: str = "to-device",
) -> int:
    if tap is not None:
        return _run_tap(tap, device, as_json=as_json, protocol=protocol)
    if port is not None:
        chunks: Iterable[bytes] = _read_port(port, baud)
    elif hex_input:
        chunks = [parse_hex(_hex_text(source))]
    elif source is None or str(source) == "-":
        chunks = _read_file(sys.stdin.buffer)
    else:
        chunks = _read_path(source)
    tally = Tally(delimited=protocol == "native")
    stream = (tally.count_input(chunk) for chunk in chunks)
    entries, line = decode_stream(stream), format_line
    if protocol != "native":  # real gear: its own framing (tools/gear_decode.py)
        from tools.gear_decode import GearDecoder, format_gear_line  # noqa: PLC0415

        gear = GearDecoder(protocol, "from-device" if direction == "from-device" else "to-device")
        entries, line = (e for chunk in stream for e in gear.feed(chunk)), format_gear_line
    try:
        for entry in entries:
            tally.count(entry)
            _write(json.dumps(entry) if as_json else line(entry))
    except KeyboardInterrupt:
        pass  # a live port is watched until Ctrl-C: the summary still follows
    print(tally.summary(), file=sys.stderr)
    return tally.status()


def _run_tap(path: Path, device: str | None, *, as_json: bool, protocol: str = "native") -> int:
    from tools.tap_client import format_tap_line, read_tap, tap_entries  # noqa: PLC0415

    if not device:
        raise UsageError("--tap needs --device NAME: the device whose link to watch")
    tally = Tally(delimited=protocol == "native")
    records = (r._replace(data=tally.count_input(r.data)) for r in read_tap(path, device))
    try:
        for entry in tap_entries(records, protocol):
            tally.count(entry)
            _write(json.dumps(entry) if as_json else format_tap_line(entry, protocol))
    except KeyboardInterrupt:
        pass  # watched until Ctrl-C, or until the daemon stops: the summary still follows
    print(tally.summary(), file=sys.stderr)
    return tally.status()


def _write(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
