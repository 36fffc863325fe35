"""The daemon at scale: 1 to 64 devices polled at 20 Hz, and its memory and start-up time.

The real daemon runs as its own process with its ground link up, against one `cupola sim`
whose cables are paced at 115,200 baud; a ground session reads what it reports. For each
size: start-up (daemon spawned until the ground has seen every device online), then a
steady window in which the daemon's CPU time is read from the kernel, its missed polls and
round-trip histogram from the device states it publishes, and its resident memory at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import psutil

from bench.machine import describe
from bench.rig import Rig, rig
from firmware_host.link.stats import RTT_BUCKETS_MS
from tools.ground_client import GroundSession

BAUD = 115200


def kind_of(index: int, devices: int) -> str:
    if devices > 1 and index == 0:
        return "pdu"
    return "camera" if index % 2 else "light"


def bench_file(devices: int) -> str:
    lines = []
    for index in range(devices):
        lines += ["[[device]]", f'name = "dev{index:02d}"', f'kind = "{kind_of(index, devices)}"']
        lines += [f"baud = {BAUD}"]
    return "\n".join(lines) + "\n"


def totals(gs: GroundSession) -> tuple[int, list[int]]:
    """Missed polls and the round-trip histogram, summed over every device's latest state."""
    missed, histogram = 0, [0] * (len(RTT_BUCKETS_MS) + 1)
    for state in gs.states.values():
        missed += int(state.get("missed_polls", 0))
        for index, count in enumerate(state["link"]["rtt_histogram"].values()):
            histogram[index] += int(count)
    return missed, histogram


def percentile_bound(histogram: list[int], fraction: float) -> str:
    total, running = sum(histogram), 0
    for index, count in enumerate(histogram):
        running += count
        if total and running >= fraction * total:
            return f"<= {RTT_BUCKETS_MS[index]:g} ms" if index < len(RTT_BUCKETS_MS) else "> 1 s"
    return "-"


async def run(r: Rig, devices: int, seconds: float) -> dict[str, Any]:
    names = list(r.paths)
    async with GroundSession(r.broker.url(), r.node, key=r.key) as gs:
        spawned = time.monotonic()
        daemon = r.start_daemon({name: {"poll_hz": 20, "baud": BAUD} for name in names})
        await gs.wait_for(lambda: gs.online(*names), 60, "every device online")
        startup = time.monotonic() - spawned
        await asyncio.sleep(2.0)  # adoption and first publications over
        process = psutil.Process(daemon.pid)
        missed_before, hist_before = totals(gs)
        cpu_before, wall_before = process.cpu_times(), time.monotonic()
        read_before = wall_before
        await asyncio.sleep(seconds)
        cpu_after, wall = process.cpu_times(), time.monotonic() - wall_before
        await asyncio.sleep(1.0)  # the states carrying the window's last polls
        missed_after, hist_after = totals(gs)
        between_reads = time.monotonic() - read_before
        rss = process.memory_info().rss
    used = cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system
    window = [after - before for after, before in zip(hist_after, hist_before, strict=True)]
    return {
        "devices": devices,
        "startup_s": startup,
        "cpu_pct": 100 * used / wall,
        "polls_per_s": sum(window) / between_reads,
        "rtt_p50": percentile_bound(window, 0.5),
        "rtt_p99": percentile_bound(window, 0.99),
        "missed": missed_after - missed_before,
        "rss_mb": rss / 1e6,
    }


def measure(sizes: list[int], seconds: float) -> list[dict[str, Any]]:
    rows = []
    for devices in sizes:
        with rig(bench_file(devices)) as r:
            rows.append(asyncio.run(run(r, devices, seconds)))
    return rows


def report(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"machine: {describe()}",
        "",
        "| devices at 20 Hz | daemon CPU (% of one core) | polls/s | poll RTT p50 | p99 "
        "| missed polls | resident memory | start-up to all online |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['devices']} | {r['cpu_pct']:.1f} % | {r['polls_per_s']:.0f} | {r['rtt_p50']} | "
            f"{r['rtt_p99']} | {r['missed']} | {r['rss_mb']:.0f} MB | {r['startup_s']:.2f} s |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print("The daemon polling every device at 20 Hz (cables at 115,200 baud)")
    print(report(measure(args.devices, args.seconds)))


if __name__ == "__main__":
    main()
