"""`cupola decode`: show every frame of a capture, decoded, with drops and resyncs marked.

Input is raw bytes (a file, or stdin), a hex dump (`--hex`: plain hex, `xxd` or `hexdump -C`
output), or a live port (`--port PATH`). One line per frame or dropped chunk; `--json` for
scripts. The first good frame after dropped bytes is marked as a resynchronisation.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from protocols.catalogue import decode_any
from protocols.errors import ProtocolError
from protocols.framing import Deframer, Frame
from protocols.records import to_jsonable

_XXD = re.compile(r"^([0-9a-fA-F]{7,16}): (.*)$")
_HEXDUMP = re.compile(r"^([0-9a-fA-F]{7,16})(?:\s+(.*?))?\s*(?:\|.*\|)?\s*$")
_HEX_PREFIX = re.compile(r"0[xX]")
_NOT_HEX = re.compile(r"[^0-9a-fA-F]")


class HexDumpError(ValueError):
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


def decode_stream(chunks: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """One dict per frame or dropped chunk, in stream order."""
    deframer = Deframer()
    after_drop = False
    for chunk in chunks:
        for item in deframer.feed(chunk):
            if not isinstance(item, Frame):
                after_drop = True
                yield {
                    "offset": item.offset,
                    "status": "dropped",
                    "reason": item.reason.value,
                    "length": item.length,
                    "raw": item.raw.hex(),
                }
                continue
            entry: dict[str, Any] = {
                "offset": item.offset,
                "status": "ok",
                "resync": after_drop,
                "kind": item.kind.name.lower(),
                "type_code": item.msg_type,
                "seq": item.seq,
                "retry": item.retry,
            }
            after_drop = False
            try:
                name, body = decode_any(item)
                entry["type"] = name
                entry["body"] = to_jsonable(body)
            except ProtocolError as exc:
                entry["status"] = "malformed"
                entry["error"] = str(exc)
                entry["payload"] = item.payload.hex()
            yield entry


def format_line(entry: dict[str, Any]) -> str:
    offset = f"{entry['offset']:>8}"
    if entry["status"] == "dropped":
        return f"{offset}  !! DROP {entry['reason'].upper():<8} {entry['length']} bytes"
    mark = "~~ RESYNC " if entry.get("resync") else ""
    kind = entry["kind"].upper() + ("+RETRY" if entry["retry"] else "")
    head = f"{offset}  {mark}{kind:<13} seq={entry['seq']:<5}"
    if entry["status"] == "malformed":
        return f"{head} type=0x{entry['type_code']:02X}  MALFORMED: {entry['error']}"
    body = entry["body"]
    fields = " ".join(f"{k}={v}" for k, v in body.items()) if isinstance(body, dict) else ""
    return f"{head} {entry['type']:<20} {fields}"


def _read_file(source: BinaryIO, size: int = 65536) -> Iterator[bytes]:
    while chunk := source.read(size):
        yield chunk


def _read_port(path: str, baud: int) -> Iterator[bytes]:
    import serial  # noqa: PLC0415 - only the live mode needs pyserial

    with serial.Serial(path, baud, timeout=0.2) as port:
        while True:
            chunk = port.read(4096)
            if chunk:
                yield chunk


def run(source: Path | None, *, hex_input: bool, port: str | None, baud: int, as_json: bool) -> int:
    if port is not None:
        chunks: Iterable[bytes] = _read_port(port, baud)
    elif hex_input:
        text = source.read_text() if source and str(source) != "-" else sys.stdin.read()
        try:
            chunks = [parse_hex(text)]
        except HexDumpError as exc:
            print(f"cupola decode: {exc}", file=sys.stderr)
            return 2
    elif source is None or str(source) == "-":
        chunks = _read_file(sys.stdin.buffer)
    else:
        chunks = _read_file(source.open("rb"))
    counts = {"ok": 0, "dropped": 0, "malformed": 0, "resync": 0}
    try:
        for entry in decode_stream(chunks):
            counts[entry["status"]] += 1
            counts["resync"] += bool(entry.get("resync"))
            line = json.dumps(entry) if as_json else format_line(entry)
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    print(
        f"{counts['ok']} frames, {counts['malformed']} malformed, {counts['dropped']} dropped "
        f"chunks, {counts['resync']} resyncs",
        file=sys.stderr,
    )
    return 0
