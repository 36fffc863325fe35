"""Real gear's codecs beside the native one: frames per second through each receive and send
path, on one core, all in one run so the ratios are fair on a noisy machine.

Receive: a stream of a protocol's answers, fed in 4 KiB reads to its deframer, every block
checked and its body decoded into typed values. Send: the request built to the byte. Peers in
the same run: Cupola's native codec (a 32-byte LIGHT_STATUS reply, bench/codec.py's case) and,
for Modbus RTU, pymodbus's own RTU framer decoding the same bytes.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable
from typing import Any

from pymodbus.framer.rtu import FramerRTU
from pymodbus.pdu import DecodePDU

from bench.codec import LIGHT, READ_SIZE
from bench.machine import describe
from protocols import enttec, rdm
from protocols import modbus_rtu as mb
from protocols import sony9pin as s9
from protocols.catalogue import LIGHT_STATUS, decode_reply, encode_reply
from protocols.framing import Deframer

FIXTURE = rdm.parse_uid("7a70:00000001")
CONTROLLER = rdm.parse_uid("454e:00000001")
SENSOR_GET = rdm.Packet(
    FIXTURE, CONTROLLER, 1, 1, 0, 0, rdm.CommandClass.GET, rdm.Pid.SENSOR_VALUE, b"\x00"
)
SENSOR_ANSWER = rdm.response_to(SENSOR_GET, rdm.encode_sensor_value(rdm.SensorValue(0, 41, 22, 58)))
STATUS = s9.Status(play=True, record=True, stop=False, standby=True)
UNIVERSE = bytes(range(256)) * 2


def _chunks(stream: bytes) -> list[bytes]:
    return [stream[i : i + READ_SIZE] for i in range(0, len(stream), READ_SIZE)]


# -- receive paths: count decoded frames ------------------------------------------------------


def rx_native(chunks: list[bytes]) -> int:
    deframer, count = Deframer(), 0
    for chunk in chunks:
        for item in deframer.feed(chunk):
            decode_reply(item, LIGHT_STATUS)  # type: ignore[arg-type]
            count += 1
    return count


def rx_nine_pin_status(chunks: list[bytes]) -> int:
    deframer, count = s9.Deframer(), 0
    for chunk in chunks:
        for item in deframer.feed(chunk):
            assert isinstance(item, s9.Block)
            s9.decode_status(item.data)
            count += 1
    return count


def rx_nine_pin_time(chunks: list[bytes]) -> int:
    deframer, count = s9.Deframer(), 0
    for chunk in chunks:
        for item in deframer.feed(chunk):
            assert isinstance(item, s9.Block)
            s9.decode_time(item.data)
            count += 1
    return count


def rx_rdm_sensor(chunks: list[bytes]) -> int:
    deframer, count = enttec.Deframer(), 0
    for chunk in chunks:
        for item in deframer.feed(chunk):
            assert isinstance(item, enttec.Message)
            rdm.decode_sensor_value(rdm.decode(item.data[1:]).data)
            count += 1
    return count


def rx_modbus(chunks: list[bytes]) -> int:
    deframer, count = mb.Deframer(request=False), 0
    for chunk in chunks:
        for item in deframer.feed(chunk):
            assert isinstance(item, mb.Adu)
            words = item.pdu[1:]
            mb.registers_float(int.from_bytes(words[:2], "big"), int.from_bytes(words[2:], "big"))
            count += 1
    return count


def rx_modbus_pymodbus(chunks: list[bytes]) -> int:
    """pymodbus frames RTU by the silence between frames: one read is one frame."""
    framer, count = FramerRTU(DecodePDU(False)), 0
    for chunk in chunks:
        _, pdu = framer.handleFrame(chunk, 0, 0)
        if pdu is not None:
            pdu.registers  # noqa: B018  (decoded already; the same work as ours)
            count += 1
    return count


# -- send paths -----------------------------------------------------------------------------


def tx_native(n: int) -> int:
    for seq in range(n):
        encode_reply(LIGHT_STATUS, LIGHT, seq & 0xFFFF)
    return n


def tx_nine_pin(n: int) -> int:
    for _ in range(n):
        s9.status_sense(0, s9.STATUS_BYTES)
    return n


def tx_dmx(n: int) -> int:
    for _ in range(n):
        enttec.dmx(UNIVERSE)
    return n


def tx_rdm(n: int) -> int:
    for _ in range(n):
        enttec.encode(enttec.Label.SEND_RDM, rdm.encode(SENSOR_GET))
    return n


def tx_modbus(n: int) -> int:
    for _ in range(n):
        mb.encode(1, mb.Function.READ_INPUT_REGISTERS, b"\x00\x0c\x00\x02")
    return n


CASES: list[tuple[str, str, bytes, Callable[[list[bytes]], int]]] = [
    ("native LIGHT_STATUS reply", "cupola", encode_reply(LIGHT_STATUS, LIGHT, 1), rx_native),
    (
        "9-pin STATUS DATA (13 B)",
        "cupola",
        s9.encode(7, 0x20, s9.encode_status(STATUS)),
        rx_nine_pin_status,
    ),
    (
        "9-pin LTC TIME DATA (7 B)",
        "cupola",
        s9.command(s9.Cmd.LTC_TIME_DATA, s9.encode_time(s9.TimeData(10, 1, 2, 3))),
        rx_nine_pin_time,
    ),
    (
        "widget + RDM SENSOR_VALUE (40 B)",
        "cupola",
        enttec.encode(enttec.Label.RECEIVED_DMX, b"\x00" + rdm.encode(SENSOR_ANSWER)),
        rx_rdm_sensor,
    ),
    (
        "Modbus FC04 2-register answer (9 B)",
        "cupola",
        mb.encode(1, 4, bytes([4]) + bytes.fromhex("41df3333")),
        rx_modbus,
    ),
    (
        "Modbus FC04 2-register answer (9 B)",
        "pymodbus",
        mb.encode(1, 4, bytes([4]) + bytes.fromhex("41df3333")),
        rx_modbus_pymodbus,
    ),
]
SENDS: list[tuple[str, Callable[[int], int]]] = [
    ("native LIGHT_STATUS reply", tx_native),
    ("9-pin STATUS SENSE request", tx_nine_pin),
    ("widget SEND_DMX, 512 slots", tx_dmx),
    ("widget SEND_RDM GET SENSOR_VALUE", tx_rdm),
    ("Modbus FC04 request", tx_modbus),
]


def _rate(run: Callable[[], int], repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        count = run()
        rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates)


def measure(frames: int = 30_000, repeats: int = 5) -> list[dict[str, Any]]:
    results = []
    for case, impl, frame, rx in CASES:
        # Modbus RTU: one read per frame, as the 3.5-character silence delivers them (both).
        chunks = [frame] * frames if case.startswith("Modbus") else _chunks(frame * frames)
        assert rx(chunks) == frames, case
        rate = _rate(functools.partial(rx, chunks), repeats)
        results.append(
            {"case": case, "path": "receive", "impl": impl, "fps": rate, "bytes": len(frame)}
        )
    for case, tx in SENDS:
        rate = _rate(functools.partial(tx, frames), repeats)
        results.append({"case": case, "path": "send", "impl": "cupola", "fps": rate, "bytes": 0})
    return results


def report(results: list[dict[str, Any]]) -> str:
    native = {r["path"]: r["fps"] for r in results if r["case"].startswith("native")}
    lines = [
        f"machine: {describe()}",
        "",
        "| frame | path | implementation | frames/s | us/frame | vs native |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    for row in results:
        lines.append(
            f"| {row['case']} | {row['path']} | {row['impl']} | {row['fps']:,.0f} | "
            f"{1e6 / row['fps']:.2f} | {row['fps'] / native[row['path']]:.2f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2,000 frames, 2 repeats")
    args = parser.parse_args(argv)
    print("Real gear's codecs beside the native one: whole receive and send paths, one core")
    print(report(measure(2_000, 2) if args.quick else measure()))


if __name__ == "__main__":
    main()
