"""Start-up: from spawning the daemon to every device online, onboard and on the ground.

The real daemon as its own process against one `cupola sim` (64 devices at 115,200 baud by
default, the power cap fitting the bench, every other setting the product's). Timed from the
moment the daemon is spawned (wall clock, the same machine):
  - onboard: each device's `device.online` event as the daemon stamped it (its own clock,
    the instant the agent declared the device online); the last of them is "all online";
  - ground: when a ground session first received each device's state saying online; the
    delay is that receipt minus the device's own onboard moment (p50, max).
Each start is from an empty state directory, and then again as a restart after a long loss
of signal: the outbox holds a full backlog (the daemon's own limit, `[outbox] max_mb`, in
telemetry samples), which the daemon checks as it opens it and drains to the ground once its
devices have had their first try; and that restart once more with the outbox's file out of
the page cache, as a reboot would leave it (the bench has just written it, so it would
otherwise be read from memory; the interpreter and the other files stay in memory).
Then `cupola --help` against a bare `python -c pass`, hyperfine-like: warm-up, then both
commands run alternately, wall time per run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.daemon_scale import BAUD, CAP, bench_file
from bench.machine import as_installed, describe
from bench.rig import Rig, rig
from firmware_host.config import OutboxConfig
from firmware_host.groundlink.outbox import ROUTINE, Outbox
from protocols import ground
from tools.ground_client import GroundSession
from tools.simulator_process import cupola_argv


def _fill_backlog(state_dir: Path) -> int:
    """The outbox as a long loss of signal leaves it: the daemon's limit of telemetry samples
    (64 devices each), written through the product's own outbox. Returns the messages."""
    limits = OutboxConfig()
    state_dir.mkdir(parents=True, exist_ok=True)
    outbox = Outbox.configured(state_dir / "outbox.db", limits)
    sample = {"ts": 0.0, "devices": {f"dev{i:02d}": {"online": True, "temperature_cdeg": 3712,
              "draw_mw": 10_000} for i in range(64)}}  # fmt: skip
    while outbox.backlog()["bytes"] < limits.max_mb * 1e6 * 0.95:
        outbox.append_many(ground.TELEMETRY, [sample] * 500, ROUTINE)
    messages = int(outbox.backlog()["messages"])
    outbox.close()
    return messages


def _evict(path: Path) -> None:
    """Drop a file's pages from the page cache, written back first: no privilege needed, and
    only this file goes cold."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


async def _start(r: Rig, backlog: bool = False, cold: bool = False) -> dict[str, Any]:
    names = list(r.paths)
    queued = _fill_backlog(r.workdir / "state") if backlog else 0
    if cold:
        _evict(r.workdir / "state" / "outbox.db")
    seen: dict[str, float] = {}  # device -> when the ground first had it online

    def on_message(topic: str, payload: bytes, received: float) -> None:
        parsed = ground.parse_topic(topic)
        if parsed is None or parsed[1] != ground.STATE or not parsed[2]:
            return
        device = parsed[2][-1]
        if device not in seen and json.loads(payload)["body"].get("online"):
            seen[device] = received

    async with GroundSession(r.broker.url(), r.node, key=r.key) as gs:
        gs.on_message = on_message
        spawned = time.time()
        r.start_daemon({name: {"baud": BAUD} for name in names}, CAP)

        def onboard() -> dict[str, float]:
            return {e["source"]: e["ts"] for e in gs.events if e["name"] == "device.online"}

        await gs.wait_for(lambda: len(onboard()) == len(names), 60, "every device.online")
        await gs.wait_for(lambda: len(seen) == len(names), 30, "every device online on ground")
        online_at = onboard()
    delays = [seen[name] - online_at[name] for name in names]
    return {
        "devices": len(names),
        "backlog": queued,
        "cold": cold,
        "all_online_s": max(online_at.values()) - spawned,
        "first_online_s": min(online_at.values()) - spawned,
        "ground_all_s": max(seen.values()) - spawned,
        "ground_delay_p50_s": statistics.median(delays),
        "ground_delay_max_s": max(delays),
    }


def start_runs(
    devices: int, runs: int, backlog: bool = False, cold: bool = False
) -> list[dict[str, Any]]:
    rows = []
    for _ in range(runs):
        with rig(bench_file(devices)) as r:
            rows.append(asyncio.run(_start(r, backlog, cold)))
    return rows


def _cupola_help() -> list[str]:
    script = Path(sys.executable).parent / "cupola"
    return [str(script), "--help"] if script.exists() else cupola_argv("--help")


def command_times(runs: int, warmup: int = 3) -> dict[str, list[float]]:
    """Wall seconds per run of each command, the two alternating run by run."""
    commands = {"cupola --help": _cupola_help(), "python -c pass": [sys.executable, "-c", "pass"]}
    times: dict[str, list[float]] = {name: [] for name in commands}
    for index in range(warmup + runs):
        for name, argv in commands.items():
            started = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
            if index >= warmup:
                times[name].append(time.perf_counter() - started)
    return times


def report(rows: list[dict[str, Any]], times: dict[str, list[float]]) -> str:
    lines = [
        f"machine: {describe()}",
        f"setting: {rows[0]['devices']} devices at {BAUD:,} baud, default poll and state rates",
        "",
        "| run | state directory | first device online | all online, onboard "
        "| all online, ground | ground after onboard, p50 | max |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for n, r in enumerate(rows, 1):
        state = f"backlog of {r['backlog']:,} samples" if r["backlog"] else "empty"
        if r["cold"]:
            state += ", its file out of memory"
        lines.append(
            f"| {n} | {state} | {r['first_online_s']:.3f} s | {r['all_online_s']:.3f} s | "
            f"{r['ground_all_s']:.3f} s | {1000 * r['ground_delay_p50_s']:.0f} ms | "
            f"{1000 * r['ground_delay_max_s']:.0f} ms |"
        )
    bare = statistics.median(times["python -c pass"])
    lines += [
        "",
        "| command (alternating runs) | median | min | max | vs python -c pass | runs |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, values in times.items():
        median = statistics.median(values)
        lines.append(
            f"| `{name}` | {1000 * median:.0f} ms | {1000 * min(values):.0f} ms | "
            f"{1000 * max(values):.0f} ms | {median / bare:.2f}x | {len(values)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="8 devices, 1 start, 5 runs")
    parser.add_argument("--devices", type=int, default=64)
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--restarts", type=int, default=2, help="with a full backlog")
    parser.add_argument(
        "--cold-restarts", type=int, default=2, help="with a full backlog not in memory"
    )
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    devices, starts, restarts, cold, runs = (
        (8, 1, 0, 0, 5)
        if args.quick
        else (args.devices, args.starts, args.restarts, args.cold_restarts, args.runs)
    )
    as_installed()
    rows = (
        start_runs(devices, starts)
        + start_runs(devices, restarts, backlog=True)
        + start_runs(devices, cold, backlog=True, cold=True)
    )
    print("Start-up: spawn to every device online, onboard and on the ground; `cupola --help`")
    print(report(rows, command_times(runs)))


if __name__ == "__main__":
    main()
