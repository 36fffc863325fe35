"""Jam accuracy: what a re-jam leaves, judged by the simulated camera's own clock.

One camera at 115,200 baud behind the real daemon, polled at 20 Hz (ten times the default:
the jam and its clock readings share the line with that much more traffic), with a CPU hog
pinned to the other core the whole run. The ground sends `camera.jam` 200 times; after each,
the simulator is asked how far the camera's clock really was from wall time at the instant the
daemon says it measured (ground truth, not the daemon's reading). Reported: that residual in
frames at the project's default rate (p50, p99, max) and how often the daemon's own reading
was within the uncertainty it stated.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from dataclasses import dataclass

from bench.daemon_scale import cpu_hog
from bench.machine import describe
from bench.rig import Rig, rig
from firmware_host.config import ProjectConfig
from hil.control import ControlClient
from tools.ground_client import GroundSession

BAUD = 115200
FPS = ProjectConfig().frame_rate  # the daemon's default project rate
POLL_HZ = 20
BENCH = f"""[[device]]
name = "cam"
kind = "camera"
baud = {BAUD}
model = {{ drift_ppm = -25.0, tc_offset_s = 0.37 }}
"""


@dataclass
class Jam:
    truth_frames: float  # the camera's real offset at the measured instant
    reported_frames: float
    uncertainty_frames: float

    @property
    def covered(self) -> bool:
        """The daemon's reading, give or take what it said it could be off by, holds the truth."""
        return abs(self.reported_frames - self.truth_frames) <= self.uncertainty_frames


async def _jams(r: Rig, count: int) -> list[Jam]:
    control = ControlClient(r.workdir / "ports" / "control.sock")
    jams = []
    async with GroundSession(r.broker.url(), r.node, key=r.key) as gs:
        await gs.wait_for(lambda: gs.online("cam"), 30, "the camera online")
        for _ in range(count):
            answer = await gs.command("camera.jam", {"cameras": ["cam"]})
            if answer["status"] != "ok":
                raise RuntimeError(f"camera.jam: {answer}")
            left = answer["result"]["jammed"]["cam"]
            truth_s = await asyncio.to_thread(control.clock_offset, "cam", left["measured_at"])
            jams.append(
                Jam(
                    truth_frames=truth_s * FPS,
                    reported_frames=left["offset_us"] / 1e6 * FPS,
                    uncertainty_frames=left["uncertainty_us"] / 1e6 * FPS,
                )
            )
    return jams


def measure(count: int = 200) -> list[Jam]:
    with cpu_hog(True), rig(BENCH) as r:
        r.start_daemon({"cam": {"baud": BAUD, "poll_hz": POLL_HZ}})
        return asyncio.run(_jams(r, count))


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(jams: list[Jam]) -> str:
    residual = [abs(j.truth_frames) for j in jams]
    uncertainty = [j.uncertainty_frames for j in jams]
    covered = sum(j.covered for j in jams)
    return "\n".join([
        f"machine: {describe()}; a CPU hog pinned to the other core throughout; the camera "
        f"polled at {POLL_HZ} Hz",
        "",
        f"| what (frames at {FPS:g} fps, {BAUD:,} baud) | p50 | p99 | max | jams |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| offset left after a jam (simulator's truth) | {statistics.median(residual):.4f} | "
        f"{_p(residual, 0.99):.4f} | {max(residual):.4f} | {len(jams)} |",
        f"| uncertainty the daemon reported | {statistics.median(uncertainty):.4f} | "
        f"{_p(uncertainty, 0.99):.4f} | {max(uncertainty):.4f} | {len(jams)} |",
        "",
        f"the daemon's reading held the truth within its stated uncertainty in {covered} of "
        f"{len(jams)} jams",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20 jams")
    parser.add_argument("--jams", type=int, default=200)
    args = parser.parse_args(argv)
    print("Jam accuracy: the offset a re-jam leaves, against the camera's own clock")
    print(report(measure(20 if args.quick else args.jams)))


if __name__ == "__main__":
    main()
