"""Command round trip: Cupola against the wire-time floor, and against pymodbus, in one run.

Cupola: the daemon's own link layer (`open_link`, a request session) sends PING to a light
served by `cupola sim` on a pseudo-terminal, in its own process; one request in flight.
Unpaced, the pty moves bytes as fast as the kernel does; paced, the simulator's emulated
cable holds both directions to the baud rate (8N1), so the floor is the time the request's
and the reply's bytes need on the wire. The peer: pymodbus's async RTU client reading two
holding registers from pymodbus's own server (`bench.modbus_peer`, its own process, on the
master end of a pty, as our simulator is): the same shape of exchange, 8 bytes out and 9
back against Cupola's 16 and 16. A pty has no baud rate, so the peer is compared unpaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient

from bench.machine import describe
from firmware_host.link.connection import LinkConnection, open_link
from firmware_host.link.stats import LinkStats
from hil.link import BITS_PER_BYTE
from hil.processes import ProcessGroup
from protocols.catalogue import HELLO, PING, encode_reply, encode_request
from protocols.messages.common import HelloRequest, Ping
from tools.simulator_process import start_simulator

WARMUP = 200


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _time(call: Callable[[], Awaitable[object]], count: int) -> list[float]:
    for _ in range(WARMUP):
        await call()
    times = []
    for _ in range(count):
        start = time.perf_counter()
        await call()
        times.append(time.perf_counter() - start)
    return times


@contextlib.asynccontextmanager
async def cupola_link(baud: int | None) -> AsyncIterator[LinkConnection]:
    workdir = Path(tempfile.mkdtemp(prefix="cupola-rtt-"))
    group = ProcessGroup()
    try:
        speed = f"baud = {baud}\n" if baud else ""
        (workdir / "bench.toml").write_text(f'[[device]]\nname = "key"\nkind = "light"\n{speed}')
        _, entries = start_simulator(group, workdir / "bench.toml", workdir / "ports", 1)
        path = entries[0]["path"]
        link = await open_link("key", path, baud or 115200, LinkStats(), timeout_s=1.0, retries=0)
        await link.session.call(HELLO, HelloRequest(proto_min=1, proto_max=1, host_timeout_ms=0))
        try:
            yield link
        finally:
            link.close()
    finally:
        group.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


async def cupola_rtts(baud: int | None, count: int) -> list[float]:
    async with cupola_link(baud) as link:
        token = iter(range(1 << 30))
        return await _time(lambda: link.session.call(PING, Ping(token=next(token))), count)


async def pymodbus_rtts(count: int) -> list[float]:
    group = ProcessGroup()
    try:
        peer = group.start(
            "modbus-peer", [sys.executable, "-m", "bench.modbus_peer"], stdout=subprocess.PIPE
        )
        assert peer.stdout is not None
        path = peer.stdout.readline().decode().strip()
        client = AsyncModbusSerialClient(
            port=path, framer=FramerType.RTU, baudrate=115200, timeout=1, retries=0
        )
        if not await client.connect():
            raise RuntimeError(f"pymodbus could not open {path}")
        try:
            return await _time(
                lambda: client.read_holding_registers(0, count=2, device_id=1), count
            )
        finally:
            client.close()
    finally:
        group.stop_all()


def wire_floor_s(baud: int) -> float:
    ping = Ping(token=0)
    size = len(encode_request(PING, ping, 1)) + len(encode_reply(PING, ping, 1))
    return size * BITS_PER_BYTE / baud


def row(name: str, link: str, times: list[float], floor_s: float | None) -> dict[str, Any]:
    p50, p99 = statistics.median(times), _p(times, 0.99)
    return {
        "who": name, "link": link, "count": len(times),
        "p50_ms": 1000 * p50, "p99_ms": 1000 * p99,
        "floor_ms": 1000 * floor_s if floor_s else None,
        "ratio": p50 / floor_s if floor_s else None,
    }  # fmt: skip


async def measure(count: int = 5000, paced_count: int = 1000) -> list[dict[str, Any]]:
    cupola = await cupola_rtts(None, count)
    peer = await pymodbus_rtts(count)
    rows = [
        row("Cupola (PING)", "pty, unpaced", cupola, None),
        row("pymodbus RTU (read 2 registers)", "pty, unpaced", peer, None),
    ]
    rows[0]["vs_peer"] = statistics.median(cupola) / statistics.median(peer)
    for baud in (115200, 921600):
        times = await cupola_rtts(baud, paced_count)
        rows.append(row("Cupola (PING)", f"{baud} baud", times, wire_floor_s(baud)))
    return rows


def report(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"machine: {describe()}",
        "",
        "| client | link | p50 | p99 | wire floor | p50 / floor | round trips |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        floor = f"{r['floor_ms']:.3f} ms" if r["floor_ms"] else "-"
        ratio = f"{r['ratio']:.3f}x" if r["ratio"] else "-"
        lines.append(
            f"| {r['who']} | {r['link']} | {r['p50_ms']:.3f} ms | {r['p99_ms']:.3f} ms | "
            f"{floor} | {ratio} | {r['count']} |"
        )
    vs = rows[0]["vs_peer"]
    lines += ["", f"Cupola's unpaced p50 is {vs:.2f}x pymodbus's, measured in the same run."]
    return "\n".join(lines)


def main() -> None:
    print("Command round trip over a pseudo-terminal")
    print(report(asyncio.run(measure())))


if __name__ == "__main__":
    main()
