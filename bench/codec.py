"""Frames per second through the whole receive and send paths, on one core.

Four implementations in one run, so ratios are fair on a noisy machine:
  cupola              the product codec: layouts derived from the construct declarations,
                      compiled construct for bodies with text
  construct-compiled  every header and body through construct's compiled parser and builder
  construct           the same through construct without compilation
  struct-by-hand      hand-written struct code with no range checks: the floor

Frames: a 32-byte frame (LIGHT_STATUS reply, fixed layout) and the largest frame the catalogue
produces (PDU_STATUS with 16 channels, variable layout, 193 bytes).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import struct
import time
from collections.abc import Callable
from typing import Any

from cobs import cobs

from bench.machine import describe
from protocols.catalogue import LIGHT_STATUS, PDU_STATUS, Command, decode_reply, encode_reply
from protocols.crc import crc32c
from protocols.framing import FRAME_HEADER, HEADER_SIZE, Deframer
from protocols.messages.light import LightFault, LightStatus
from protocols.messages.pdu import PduChannel, PduStatus
from protocols.records import codec_of

READ_SIZE = 4096  # what one serial read typically returns under load

LIGHT = LightStatus(
    on=True, intensity_permille=625, cct_k=4300, target_intensity_permille=625, target_cct_k=4300,
    fade_remaining_ms=0, output_limit_permille=1000, draw_mw=47_250, temperature_cdeg=3850,
    faults=LightFault(0),
)  # fmt: skip
PDU = PduStatus(
    bus_voltage_mv=27_950,
    total_power_mw=212_000,
    channels=tuple(
        PduChannel(
            channel=i,
            on=True,
            tripped=False,
            voltage_mv=27_950,
            current_ma=1_200 + i,
            power_mw=33_540 + i,
        )
        for i in range(16)
    ),
)
CASES: dict[str, tuple[Command[Any, Any], Any]] = {
    "32-byte LIGHT_STATUS": (LIGHT_STATUS, LIGHT),
    "193-byte PDU_STATUS": (PDU_STATUS, PDU),
}

_crc = struct.Struct("<I")
_LIGHT_BY_HAND = struct.Struct("<BHHHHIHIhH")
_HEADER_BY_HAND = struct.Struct("<BBBH")


def _chunks(stream: bytes) -> list[bytes]:
    return [stream[i : i + READ_SIZE] for i in range(0, len(stream), READ_SIZE)]


def rx_cupola(chunks: list[bytes], command: Any, _: Any) -> int:
    deframer = Deframer()
    count = 0
    for chunk in chunks:
        for item in deframer.feed(chunk):
            decode_reply(item, command)  # type: ignore[arg-type]
            count += 1
    return count


def _rx_construct(chunks: list[bytes], command: Any, compiled: bool) -> int:
    header = FRAME_HEADER.compile() if compiled else FRAME_HEADER
    codec = codec_of(command.reply)
    body_parser = codec.compiled if compiled else codec.struct
    count = 0
    pending = b""
    for chunk in chunks:
        parts = (pending + chunk).split(b"\x00")
        pending = parts.pop()
        for part in parts:
            if not part:
                continue
            raw = cobs.decode(part)
            if crc32c(raw[:-4]) != _crc.unpack_from(raw, len(raw) - 4)[0]:
                continue
            header.parse(raw)
            codec.from_container(body_parser.parse(raw[HEADER_SIZE:-4]))
            count += 1
    return count


def rx_construct_compiled(chunks: list[bytes], command: Any, _: Any) -> int:
    return _rx_construct(chunks, command, compiled=True)


def rx_construct_plain(chunks: list[bytes], command: Any, _: Any) -> int:
    return _rx_construct(chunks, command, compiled=False)


def rx_struct_by_hand(chunks: list[bytes], command: Any, _: Any) -> int:
    count = 0
    pending = b""
    for chunk in chunks:
        parts = (pending + chunk).split(b"\x00")
        pending = parts.pop()
        for part in parts:
            if not part:
                continue
            raw = cobs.decode(part)
            if crc32c(raw[:-4]) != _crc.unpack_from(raw, len(raw) - 4)[0]:
                continue
            _HEADER_BY_HAND.unpack_from(raw)
            if command is LIGHT_STATUS:
                LightStatus(*_LIGHT_BY_HAND.unpack_from(raw, HEADER_SIZE))
            else:
                _pdu_by_hand(raw)
            count += 1
    return count


_PDU_HEAD = struct.Struct("<HIB")
_PDU_CHANNEL = struct.Struct("<BBBHHI")


def _pdu_by_hand(raw: bytes) -> PduStatus:
    bus, total, n = _PDU_HEAD.unpack_from(raw, HEADER_SIZE)
    offset = HEADER_SIZE + _PDU_HEAD.size
    channels = []
    for _ in range(n):
        c, on, tripped, mv, ma, mw = _PDU_CHANNEL.unpack_from(raw, offset)
        channels.append(PduChannel(c, bool(on), bool(tripped), mv, ma, mw))
        offset += _PDU_CHANNEL.size
    return PduStatus(bus, total, tuple(channels))


def tx_cupola(command: Any, body: Any, n: int) -> int:
    for seq in range(n):
        encode_reply(command, body, seq & 0xFFFF)
    return n


def _tx_construct(command: Any, body: Any, n: int, compiled: bool) -> int:
    header = FRAME_HEADER.compile() if compiled else FRAME_HEADER
    codec = codec_of(command.reply)
    builder = codec.compiled if compiled else codec.struct
    for seq in range(n):
        raw = header.build({"version": 1, "flags": 1, "type": command.code, "seq": seq & 0xFFFF})
        raw += builder.build(codec.to_values(body))
        b"\x00" + cobs.encode(raw + _crc.pack(crc32c(raw))) + b"\x00"
    return n


def tx_construct_compiled(command: Any, body: Any, n: int) -> int:
    return _tx_construct(command, body, n, compiled=True)


def tx_construct_plain(command: Any, body: Any, n: int) -> int:
    return _tx_construct(command, body, n, compiled=False)


def tx_struct_by_hand(command: Any, body: Any, n: int) -> int:
    for seq in range(n):
        if command is LIGHT_STATUS:
            payload = _LIGHT_BY_HAND.pack(*(getattr(body, f) for f in body.__struct_fields__))
        else:
            payload = _PDU_HEAD.pack(body.bus_voltage_mv, body.total_power_mw, len(body.channels))
            payload += b"".join(
                _PDU_CHANNEL.pack(
                    c.channel, c.on, c.tripped, c.voltage_mv, c.current_ma, c.power_mw
                )
                for c in body.channels
            )
        raw = _HEADER_BY_HAND.pack(1, 1, command.code, seq & 0xFFFF) + payload
        b"\x00" + cobs.encode(raw + _crc.pack(crc32c(raw))) + b"\x00"
    return n


RX: dict[str, Callable[[list[bytes], Any, Any], int]] = {
    "cupola": rx_cupola,
    "construct-compiled": rx_construct_compiled,
    "construct": rx_construct_plain,
    "struct-by-hand": rx_struct_by_hand,
}
TX: dict[str, Callable[[Any, Any, int], int]] = {
    "cupola": tx_cupola,
    "construct-compiled": tx_construct_compiled,
    "construct": tx_construct_plain,
    "struct-by-hand": tx_struct_by_hand,
}


def _rate(run: Callable[[], int], repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        count = run()
        rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates)


def measure(frames: int = 20_000, repeats: int = 5) -> list[dict[str, Any]]:
    results = []
    for case, (command, body) in CASES.items():
        stream = b"".join(encode_reply(command, body, i & 0xFFFF) for i in range(frames))
        chunks = _chunks(stream)
        assert rx_cupola(chunks, command, None) == frames
        for name, rx in RX.items():
            n = frames // 10 if name == "construct" else frames
            part = _chunks(stream[: len(stream) * n // frames])
            rate = _rate(functools.partial(rx, part, command, None), repeats)
            results.append({"case": case, "path": "receive", "impl": name, "fps": rate})
        for name, tx in TX.items():
            n = frames // 10 if name == "construct" else frames
            rate = _rate(functools.partial(tx, command, body, n), repeats)
            results.append({"case": case, "path": "send", "impl": name, "fps": rate})
    return results


def report(results: list[dict[str, Any]]) -> str:
    lines = [
        f"machine: {describe()}",
        "",
        "| frame | path | implementation | frames/s | us/frame | vs cupola |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    for row in results:
        base = next(
            r["fps"] for r in results
            if r["case"] == row["case"] and r["path"] == row["path"] and r["impl"] == "cupola"
        )  # fmt: skip
        lines.append(
            f"| {row['case']} | {row['path']} | {row['impl']} | {row['fps']:,.0f} | "
            f"{1e6 / row['fps']:.2f} | {row['fps'] / base:.2f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2,000 frames, 2 repeats")
    args = parser.parse_args(argv)
    print("Codec: whole receive path (deframe, COBS, CRC, header, body) and send path, one core")
    print(report(measure(2_000, 2) if args.quick else measure()))


if __name__ == "__main__":
    main()
