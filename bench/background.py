"""The daemon's polls beside its own heaviest work: proxy transcodes, at the priority they
run at and at the daemon's own.

The daemon starts ffmpeg for the proxies of circled takes during the shoot
(`firmware_host.dailies.proxies`), and ffmpeg takes every core it can get. Here the real
daemon polls 64 devices (as in `bench.daemon_scale`, no hog of ours) while the product's own
transcode command (`transcode_args`, at the default proxy settings) runs back to back on a UHD
source, in alternating rounds: once as the daemon starts it (`in_background`: niceness 19),
once at the daemon's own priority. Reported per round: missed polls, poll lateness and round
trips, and how busy the machine was.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.daemon_scale import bench_file, run
from bench.machine import describe
from bench.rig import rig
from firmware_host.config import DataConfig
from firmware_host.dailies.background import NICENESS, in_background
from firmware_host.dailies.config import DailiesConfig
from firmware_host.dailies.proxies import transcode_args

DEVICES = 64
SOURCE_SECONDS = 4  # a UHD clip: each transcode decodes it whole


def make_source(folder: Path) -> Path:
    """A UHD 25 fps clip, as a camera's card would hold (H.264 here: ffmpeg decodes it)."""
    source = folder / "source.mov"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", "testsrc2=size=3840x2160:rate=25", "-t", str(SOURCE_SECONDS),
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(source)],
        check=True,
    )  # fmt: skip
    return source


@contextlib.contextmanager
def transcoding(source: Path, background: bool) -> Iterator[list[int]]:
    """The product's proxy transcode of `source`, back to back for the block; yields the
    count of transcodes finished so far (one item, updated)."""
    target = source.with_name("proxy.mp4")
    argv = transcode_args(source, target, DataConfig().proxy_kbps, DailiesConfig().proxy_height)
    if background:
        argv = in_background(argv)
    done, stop = [0], threading.Event()

    def loop() -> None:
        while not stop.is_set():
            subprocess.run(argv, stdin=subprocess.DEVNULL, check=True)
            done[0] += 1

    worker = threading.Thread(target=loop, name="transcodes")
    worker.start()
    try:
        yield done
    finally:
        stop.set()
        worker.join()


def measure(rounds: int, seconds: float) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="cupola-background-") as folder:
        source = make_source(Path(folder))
        for index in range(rounds):
            for background in (True, False) if index % 2 == 0 else (False, True):
                with transcoding(source, background) as done, rig(bench_file(DEVICES)) as r:
                    row = asyncio.run(run(r, DEVICES, seconds))
                rows.append(row | {"round": index + 1, "background": background, "done": done[0]})
    return rows


def report(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"machine: {describe()}",
        f"setting: {DEVICES} devices polled at 20 Hz (bench.daemon_scale's bench), the proxy "
        f"transcode at the product's defaults on a {SOURCE_SECONDS} s UHD source, back to back",
        "",
        "| round | transcodes at | window | transcodes finished | missed polls "
        "| poll lateness p50 | lateness p99 | poll RTT p99 | daemon CPU | all cores busy |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        priority = f"niceness {NICENESS} (as shipped)" if r["background"] else "the daemon's"
        lines.append(
            f"| {r['round']} | {priority} | {r['seconds']:g} s | {r['done']} | {r['missed']} | "
            f"{r['late_p50']} | {r['late_p99']} | {r['rtt_p99']} | {r['cpu_pct']:.1f} % | "
            f"{r['machine_busy_pct']:.0f} % |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one round of 5 s windows")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds = 1, 5.0
    print(report(measure(args.rounds, args.seconds)))


if __name__ == "__main__":
    main()
