"""Can one simulator process carry a big bench? CPU of `cupola sim` while every device is polled.

The simulator runs as its own process, exactly as on the bench; this script polls every device
at the given rate through the daemon's own link layer (one request in flight per device, as
the daemon does) and reads the simulator's CPU time from the kernel.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
import psutil

from bench.machine import describe
from firmware_host.config import DeviceConfig
from firmware_host.devices.schedule import grid_tick, poll_after
from firmware_host.link.connection import LinkConnection, open_link
from firmware_host.link.errors import LinkTimeout
from firmware_host.link.stats import LinkStats
from hil.processes import ProcessGroup
from protocols.catalogue import CAMERA_STATUS, HELLO, LIGHT_STATUS, PDU_STATUS, Command
from protocols.messages.common import Empty, HelloRequest
from tools.simulator_process import start_simulator

STATUS: dict[str, Command[Any, Any]] = {
    "camera": CAMERA_STATUS,
    "light": LIGHT_STATUS,
    "pdu": PDU_STATUS,
}


def bench_file(devices: int, baud: int) -> str:
    lines = []
    for index in range(devices):
        kind = "pdu" if index == 0 else ("camera" if index % 2 else "light")
        lines += ["[[device]]", f'name = "dev{index:02d}"', f'kind = "{kind}"', f"baud = {baud}"]
    return "\n".join(lines) + "\n"


# The link settings a device gets when its config names none: the peer's exchanges time out
# and are retried as the daemon's do.
DEVICE_DEFAULTS = {f.name: f.default for f in msgspec.structs.fields(DeviceConfig)}


async def _poll(link: LinkConnection, kind: str, hz: float, until: float, rtts: list[float]) -> int:
    """One device polled as the daemon's agent polls it (`firmware_host.devices.schedule`): on
    the grid every device shares, a late poll run at once, only whole skipped periods counted
    as missed. Returns those."""
    loop = asyncio.get_running_loop()
    period = 1.0 / hz
    due = grid_tick(loop.time(), period)
    missed = 0
    while loop.time() < until:
        start = loop.time()
        try:
            await link.session.call(STATUS[kind], Empty())
            rtts.append(loop.time() - start)
        except LinkTimeout:
            pass
        now = loop.time()
        due, skipped = poll_after(due, now, period)
        missed += skipped
        await asyncio.sleep(max(0.0, due - now))
    return missed


async def measure(devices: int, hz: float, seconds: float, baud: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="cupola-simscale-"))
    group = ProcessGroup()
    try:
        (workdir / "bench.toml").write_text(bench_file(devices, baud))
        sim, entries = start_simulator(group, workdir / "bench.toml", workdir / "ports", devices)
        stats = LinkStats()
        links = []
        for entry in entries:
            link = await open_link(
                entry["device"], entry["path"], baud, stats,
                timeout_s=DEVICE_DEFAULTS["timeout_ms"] / 1000.0,
                retries=DEVICE_DEFAULTS["retries"],
            )  # fmt: skip
            await link.session.call(
                HELLO, HelloRequest(proto_min=1, proto_max=1, host_timeout_ms=0)
            )
            links.append((link, entry["kind"]))
        process = psutil.Process(sim.pid)
        cpu_before = process.cpu_times()
        own_before = time.process_time()
        wall_before = time.monotonic()
        rtts: list[float] = []
        until = asyncio.get_running_loop().time() + seconds
        missed = await asyncio.gather(*(_poll(link, kind, hz, until, rtts) for link, kind in links))
        wall = time.monotonic() - wall_before
        cpu_after = process.cpu_times()
        sim_cpu = (cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system) / wall
        own_cpu = (time.process_time() - own_before) / wall
        for link, _ in links:
            link.close()
        rtts.sort()
        return {
            "devices": devices,
            "poll_hz": hz,
            "baud": baud,
            "polls_per_s": len(rtts) / wall,
            "sim_cpu_pct": 100 * sim_cpu,
            "poller_cpu_pct": 100 * own_cpu,
            "rtt_p50_ms": 1000 * statistics.median(rtts),
            "rtt_p99_ms": 1000 * rtts[int(0.99 * (len(rtts) - 1))],
            "timeouts": stats.timeouts,
            "missed_polls": sum(missed),
        }
    finally:
        group.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


def report(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"machine: {describe()}",
        "",
        "| devices | poll rate | polls/s | sim CPU (% of a core) | poller CPU | RTT p50 | RTT p99 "
        "| timeouts | missed polls |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['devices']} | {r['poll_hz']:g} Hz | {r['polls_per_s']:.0f} | "
            f"{r['sim_cpu_pct']:.1f} % | {r['poller_cpu_pct']:.1f} % | {r['rtt_p50_ms']:.2f} ms | "
            f"{r['rtt_p99_ms']:.2f} ms | {r['timeouts']} | {r['missed_polls']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 10, 40])
    parser.add_argument("--hz", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--baud", type=int, default=115200)
    parser.add_argument("--quick", action="store_true", help="1 and 10 devices, 3 s")
    args = parser.parse_args(argv)
    if args.quick:
        args.devices, args.seconds = [1, 10], 3.0
    rows = [asyncio.run(measure(n, args.hz, args.seconds, args.baud)) for n in args.devices]
    print("Simulator scale: `cupola sim` CPU while every device is polled")
    print(report(rows))


if __name__ == "__main__":
    main()
