"""The daemon at scale: devices polled at 20 Hz, its CPU per poll against the bare link layer's.

20 Hz is where issue 18 set the targets (a 50 ms period): ten times the product's default poll
rate (`DeviceConfig.poll_hz`, 2 Hz) and twice the scenarios' (10 Hz), the rate at which a late
or missed poll shows. The headline also runs at the default rate, against the link layer at
that rate, without a target: there the daemon's per-device work that does not follow the
poll rate (each state published twice a second, its PUBACKs) is spread over a tenth of the
polls.

The real daemon runs as its own process with its ground link up, against one `cupola sim`
whose cables are paced at 115,200 baud; a ground session reads what it reports. The power cap
is set to fit the bench (no device shed at start-up: a shed camera is not polled as in
production); sheds are counted and reported. For each size, after every device is online and
the adoption is over, a steady window in which:
  - the daemon's CPU time is read from the kernel, and the status polls it made from its own
    link statistics (the `health` command at both ends; the count of the poll-lateness
    histogram, one entry per poll: the cameras' clock readings are the daemon's own extra
    exchanges, not polls): CPU per poll;
  - poll lateness (how late each poll started against its schedule, the agent's histogram)
    and whole missed periods (`missed_polls`) are the differences over the window;
  - resident memory is read at the end;
  - the simulator's CPU and how busy the whole machine was (in cores' worth, as % of one core,
    the hog included): a bench whose cores are all busy measures the daemon in a queue for
    the CPU, not only its own cost;
  - the time the host stole from this virtual machine's cores (the kernel's `steal`; not
    counted as busy): on a shared host, a core stopped for tens of milliseconds makes polls
    late past a period in the daemon and in any other process on it alike (a second process
    sleeping 2 ms at a time on the same core overslept 32 ms at the instant the daemon
    stalled 33 ms). It is an average over the window: it says the host was busy, not how
    long its longest stop was.
The headline run (64 devices, 60 s) has a CPU hog (`python -c 'while True: pass'`) pinned to
the last core throughout. In the same run, with the same hog, the bare link layer polls the
same bench (`bench.sim_scale`'s poller, no daemon) for as long, in alternating rounds with
the daemon: the ratio of CPU per poll is the daemon's overhead over the link layer it drives.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import psutil

from bench import sim_scale
from bench.machine import describe
from bench.rig import Rig, rig
from firmware_host.link.stats import RTT_BUCKETS_MS
from tools.ground_client import GroundSession

BAUD = 115200
POLL_HZ = 20  # issue 18's targets: a 50 ms period (the module's docstring)
DEFAULT_POLL_HZ = sim_scale.DEVICE_DEFAULTS["poll_hz"]  # the product's
CAP = "[power]\ncap_w = 5000\n"  # 64 devices draw about 1 kW: the cap fits the bench
ROUNDS = 3  # the headline's alternating rounds of the daemon and the bare link layer


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


@contextlib.contextmanager
def cpu_hog(enabled: bool) -> Iterator[None]:
    """A busy loop pinned to the last core (when there are two or more) for the block."""
    if not enabled:
        yield
        return
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        cores = sorted(os.sched_getaffinity(0))
        if len(cores) > 1:
            os.sched_setaffinity(hog.pid, {cores[-1]})
        yield
    finally:
        hog.kill()
        hog.wait()


def _sum_histograms(links: dict[str, dict[str, Any]], key: str) -> list[int]:
    total = [0] * (len(RTT_BUCKETS_MS) + 1)
    for link in links.values():
        for index, count in enumerate(link[key].values()):
            total[index] += int(count)
    return total


def percentile_bound(histogram: list[int], fraction: float) -> str:
    total, running = sum(histogram), 0
    for index, count in enumerate(histogram):
        running += count
        if total and running >= fraction * total:
            return f"<= {RTT_BUCKETS_MS[index]:g} ms" if index < len(RTT_BUCKETS_MS) else "> 1 s"
    return "-"


def _missed(gs: GroundSession) -> int:
    return sum(int(state.get("missed_polls", 0)) for state in gs.states.values())


async def _links(gs: GroundSession) -> dict[str, dict[str, Any]]:
    answer = await gs.command("health")
    links: dict[str, dict[str, Any]] = answer["result"]["links"]
    return links


async def run(r: Rig, devices: int, seconds: float, poll_hz: float = POLL_HZ) -> dict[str, Any]:
    names = list(r.paths)
    async with GroundSession(r.broker.url(), r.node, key=r.key) as gs:
        spawned = time.monotonic()
        daemon = r.start_daemon({name: {"poll_hz": poll_hz, "baud": BAUD} for name in names}, CAP)
        await gs.wait_for(lambda: gs.online(*names), 60, "every device online")
        startup = time.monotonic() - spawned
        # adoption over: every device has published a state with a poll after it
        await gs.wait_for(
            lambda: all(s["link"]["requests"] > 10 for s in gs.states.values()), 30, "polling"
        )
        process, simulator = psutil.Process(daemon.pid), psutil.Process(r.simulator.pid)
        missed_before = _missed(gs)
        links_before = await _links(gs)
        cpu_before, wall_before = process.cpu_times(), time.monotonic()
        sim_before, machine_before = simulator.cpu_times(), psutil.cpu_times()
        await asyncio.sleep(seconds)  # the measured window: the daemon works, we only look
        cpu_after, wall = process.cpu_times(), time.monotonic() - wall_before
        sim_after, machine_after = simulator.cpu_times(), psutil.cpu_times()
        links_after = await _links(gs)
        await asyncio.sleep(1.0)  # the states carrying the window's last polls
        missed_after = _missed(gs)
        rss = process.memory_info().rss
        sheds = sum(1 for e in gs.events if e["name"] == "power.shed")
    used = cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system
    sim_used = sim_after.user + sim_after.system - sim_before.user - sim_before.system
    idle = sum(getattr(machine_after, f) - getattr(machine_before, f) for f in ("idle", "iowait"))
    steal = getattr(machine_after, "steal", 0.0) - getattr(machine_before, "steal", 0.0)
    rtt = [
        a - b
        for a, b in zip(
            _sum_histograms(links_after, "rtt_histogram"),
            _sum_histograms(links_before, "rtt_histogram"),
            strict=True,
        )
    ]
    late = [
        a - b
        for a, b in zip(
            _sum_histograms(links_after, "poll_late_histogram"),
            _sum_histograms(links_before, "poll_late_histogram"),
            strict=True,
        )
    ]
    return _figures(
        {
            "devices": devices,
            "poll_hz": poll_hz,
            "windows": [seconds],
            "startup_s": startup,
            "wall_s": wall,
            "cpu_s": used,
            "sim_cpu_s": sim_used,
            "idle_s": idle,
            "steal_s": steal,
            "polls": sum(late),  # one lateness entry per status poll
            "rtt": rtt,
            "late": late,
            "late_max_ms": max(link["poll_late_max_ms"] for link in links_after.values()),
            "missed": missed_after - missed_before,
            "sheds": sheds,
            "rss_mb": rss / 1e6,
        }
    )


def _figures(raw: dict[str, Any]) -> dict[str, Any]:
    """What is reported, from the window's (or pooled windows') sums."""
    wall, used, polls = raw["wall_s"], raw["cpu_s"], raw["polls"]
    cores = psutil.cpu_count() or 1
    return raw | {
        "seconds": sum(raw["windows"]),
        "cpu_pct": 100 * used / wall,
        "sim_cpu_pct": 100 * raw["sim_cpu_s"] / wall,
        # of one core, hog included; time stolen by the host is not work done here
        "machine_busy_pct": 100 * (cores - (raw["idle_s"] + raw["steal_s"]) / wall),
        "steal_pct": 100 * raw["steal_s"] / wall,  # of one core: the host ran something else
        "polls_per_s": polls / wall,
        "cpu_us_per_poll": 1e6 * used / polls if polls else float("nan"),
        "rtt_p50": percentile_bound(raw["rtt"], 0.5),
        "rtt_p99": percentile_bound(raw["rtt"], 0.99),
        "late_p50": percentile_bound(raw["late"], 0.5),
        "late_p99": percentile_bound(raw["late"], 0.99),
    }


def _pooled(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Several windows of the same bench as one: sums, histograms added, worst of the rest."""
    added = (
        "windows", "wall_s", "cpu_s", "sim_cpu_s", "idle_s", "steal_s", "polls", "missed", "sheds"
    )  # fmt: skip
    raw: dict[str, Any] = {key: sum((row[key] for row in rows[1:]), rows[0][key]) for key in added}
    for key in ("rtt", "late"):
        raw[key] = [sum(counts) for counts in zip(*(row[key] for row in rows), strict=True)]
    for key in ("startup_s", "late_max_ms", "rss_mb"):
        raw[key] = max(row[key] for row in rows)
    return _figures(raw | {"devices": rows[0]["devices"], "poll_hz": rows[0]["poll_hz"]})


def measure(sizes: list[int], seconds: float, hog: bool = False) -> list[dict[str, Any]]:
    rows = []
    with cpu_hog(hog):
        for devices in sizes:
            with rig(bench_file(devices)) as r:
                rows.append(asyncio.run(run(r, devices, seconds)))
    return rows


def versus_link_layer(
    devices: int, seconds: float, rounds: int = ROUNDS, poll_hz: float = POLL_HZ
) -> dict[str, Any]:
    """The daemon and the bare link layer on the same bench beside the same CPU hog, in
    `rounds` rounds of `seconds / rounds` each, which goes first alternating.

    A shared host's speed drifts: the same code measured a minute apart differed by a third
    here. In rounds, each ratio compares two windows taken next to each other; the pooled
    ratio is the CPU of all the daemon's windows per poll against all the link layer's."""
    window = seconds / rounds
    pairs: list[dict[str, Any]] = []
    with cpu_hog(True):
        for index in range(rounds):
            pair: dict[str, Any] = {}
            for side in ("daemon", "bare") if index % 2 == 0 else ("bare", "daemon"):
                if side == "daemon":
                    with rig(bench_file(devices)) as r:
                        pair["daemon"] = asyncio.run(run(r, devices, window, poll_hz))
                else:
                    bare = asyncio.run(sim_scale.measure(devices, poll_hz, window, BAUD))
                    bare["cpu_us_per_poll"] = 1e4 * bare["poller_cpu_pct"] / bare["polls_per_s"]
                    pair["bare"] = bare
            pairs.append(pair)
    return {
        "rounds": pairs,
        "daemon": _pooled([pair["daemon"] for pair in pairs]),
        "bare": _pooled_bare([pair["bare"] for pair in pairs]),
    }


def _pooled_bare(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The link layer's windows as one (each as long as the others)."""
    polls = sum(row["polls_per_s"] for row in rows)
    return {
        "poller_cpu_pct": statistics.fmean(row["poller_cpu_pct"] for row in rows),
        "sim_cpu_pct": statistics.fmean(row["sim_cpu_pct"] for row in rows),
        "polls_per_s": polls / len(rows),
        "cpu_us_per_poll": sum(row["cpu_us_per_poll"] * row["polls_per_s"] for row in rows) / polls,
        "missed_polls": sum(row["missed_polls"] for row in rows),
    }


def report(rows: list[dict[str, Any]], load: str) -> str:
    rates = " and ".join(sorted({f"{r['poll_hz']:g} Hz" for r in rows}))
    lines = [
        f"machine: {describe()}",
        f"load: {load}; setting: {rates} polls (the product's default: {DEFAULT_POLL_HZ:g} Hz), "
        f"{BAUD:,} baud cables, power cap fits the bench (sheds counted)",
        "",
        "| devices | window | daemon CPU (% of a core) | polls/s | CPU per poll | poll RTT p50 "
        "| RTT p99 | poll lateness p50 | lateness p99 | lateness max (since start) "
        "| missed polls | sheds | resident memory | start-up to all online (ground) "
        "| simulator CPU | all cores busy | stolen by the host (% of a core, on average) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['devices']} | {r['seconds']:g} s | {r['cpu_pct']:.1f} % | "
            f"{r['polls_per_s']:.0f} | {r['cpu_us_per_poll']:.0f} us | {r['rtt_p50']} | "
            f"{r['rtt_p99']} | {r['late_p50']} | {r['late_p99']} | {r['late_max_ms']:.1f} ms | "
            f"{r['missed']} | {r['sheds']} | {r['rss_mb']:.0f} MB | {r['startup_s']:.2f} s | "
            f"{r['sim_cpu_pct']:.1f} % | {r['machine_busy_pct']:.0f} % | {r['steal_pct']:.1f} % |"
        )
    return "\n".join(lines)


def report_versus(result: dict[str, Any]) -> str:
    daemon, bare = result["daemon"], result["bare"]
    ratio = daemon["cpu_us_per_poll"] / bare["cpu_us_per_poll"]
    rounds = result["rounds"]
    ratios = [p["daemon"]["cpu_us_per_poll"] / p["bare"]["cpu_us_per_poll"] for p in rounds]
    lines = [
        report([daemon], f"a CPU hog pinned to the other core throughout; {len(rounds)} windows "
               "of the daemon pooled"),
        "",
        f"| same bench, same hog ({len(rounds)} alternating rounds, pooled) | CPU (% of a core) "
        "| polls/s | CPU per poll | vs link layer | missed polls | simulator CPU |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| the daemon (link layer, states, budgets, telemetry, MQTT) | "
        f"{daemon['cpu_pct']:.1f} % | {daemon['polls_per_s']:.0f} | "
        f"{daemon['cpu_us_per_poll']:.0f} us | {ratio:.2f}x | {daemon['missed']} | "
        f"{daemon['sim_cpu_pct']:.1f} % |",
        f"| bare link layer (bench.sim_scale's poller) | {bare['poller_cpu_pct']:.1f} % | "
        f"{bare['polls_per_s']:.0f} | {bare['cpu_us_per_poll']:.0f} us | 1.00x | "
        f"{bare['missed_polls']} | {bare['sim_cpu_pct']:.1f} % |",
        "",
        "| round (first) | window | the daemon, CPU per poll | bare link layer | ratio "
        "| daemon missed polls | lateness max | stolen by the host in the daemon's window "
        "(% of a core) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]  # fmt: skip
    for index, (pair, each) in enumerate(zip(rounds, ratios, strict=True)):
        first = "the daemon" if index % 2 == 0 else "the link layer"
        d, b = pair["daemon"], pair["bare"]
        lines.append(
            f"| {index + 1} ({first}) | {d['seconds']:.3g} s | {d['cpu_us_per_poll']:.0f} us | "
            f"{b['cpu_us_per_poll']:.0f} us | {each:.2f}x | {d['missed']} | "
            f"{d['late_max_ms']:.1f} ms | {d['steal_pct']:.1f} % |"
        )
    lines.append(f"\nratio: {ratio:.2f}x pooled; rounds {min(ratios):.2f}x to {max(ratios):.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="8 devices, 5 s windows")
    parser.add_argument(
        "--devices", type=int, nargs="*", default=[1, 8, 32], help="none: headline only"
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--headline", type=int, default=64, help="devices in the hog run")
    parser.add_argument("--headline-seconds", type=float, default=60.0)
    parser.add_argument(
        "--default-rate-seconds", type=float, default=40.0,
        help="the headline again at the product's default poll rate (2 rounds); 0: not run",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.quick:
        args.devices, args.seconds, args.headline, args.headline_seconds = [], 5.0, 8, 5.0
        args.default_rate_seconds = 0.0
    if args.devices:
        print(f"The daemon polling every device at {POLL_HZ} Hz, no CPU hog")
        print(report(measure(args.devices, args.seconds), "no CPU hog of ours"))
        print()
    print(f"The daemon at {args.headline} devices beside a CPU hog, against its link layer")
    print(report_versus(versus_link_layer(args.headline, args.headline_seconds)))
    if args.default_rate_seconds:
        print(
            f"\nThe same at the product's default poll rate, {DEFAULT_POLL_HZ:g} Hz (no target: "
            "the issue's are set at 20 Hz)"
        )
        at_default = versus_link_layer(
            args.headline, args.default_rate_seconds, rounds=2, poll_hz=DEFAULT_POLL_HZ
        )
        print(report_versus(at_default))


if __name__ == "__main__":
    main()
