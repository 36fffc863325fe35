"""`cupola demo`: a short simulated shoot, end to end, for a new user.

Starts a private mosquitto, the simulators (two cameras, two lights, a PDU), the daemon and
the JSON monitor as separate processes, then plays a scene through the ground link exactly
as a director would: lights up, roll, cut, lights down. Prints what happened, then stops
every process it started, also when interrupted.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

from hil.broker import Mosquitto
from hil.processes import ProcessGroup
from protocols.ground import KeyFile, Role
from tools.ground_client import GroundSession
from tools.keys import add_to_keyring, create_key
from tools.simulator_process import cupola_argv, start_simulator

NODE = "iss-film"
BENCH = """\
[bench]
seed = 2026

[[device]]
name = "pdu"
kind = "pdu"
baud = 115200

[[device]]
name = "cam-a"
kind = "camera"
baud = 115200
pdu_channel = 0

[[device]]
name = "cam-b"
kind = "camera"
baud = 115200
pdu_channel = 1
model = { drift_ppm = -25.0, tc_offset_s = 0.37 }

[[device]]
name = "key"
kind = "light"
baud = 115200
pdu_channel = 2

[[device]]
name = "fill"
kind = "light"
baud = 115200
pdu_channel = 3
model = { max_w = 60.0 }
"""


def _daemon_config(paths: dict[str, str], broker_url: str, state_dir: Path, keyring: Path) -> str:
    lines = [
        "[node]",
        f'name = "{NODE}"',
        f'state_dir = "{state_dir}"',
        "",
        "[auth]",
        f'keyring = "{keyring}"',
        "",
        "[project]",
        "frame_rate = 25",
        "",
        "[mqtt]",
        f'url = "{broker_url}"',
    ]
    for name, path in paths.items():
        kind = "pdu" if name == "pdu" else "camera" if name.startswith("cam") else "light"
        lines += [
            "",
            "[[device]]",
            f'name = "{name}"',
            f'kind = "{kind}"',
            f'port = "{path}"',
            "poll_hz = 4",
        ]
    return "\n".join(lines) + "\n"


class Printer:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def step(self, text: str) -> None:
        print(f"  [{time.monotonic() - self.t0:5.1f} s] {text}", flush=True)


async def _scene(url: str, key: KeyFile, record_s: float, out: Printer) -> dict[str, Any]:
    devices = ("cam-a", "cam-b", "key", "fill", "pdu")
    async with GroundSession(url, NODE, key=key) as gs:
        await gs.wait_for(lambda: gs.online(*devices), 30, "every device online")
        out.step("daemon reports every device online: " + ", ".join(devices))
        peak = {"w": 0.0}

        def track_power() -> None:
            status = gs.states.get("pdu", {}).get("status") or {}
            peak["w"] = max(peak["w"], status.get("total_power_mw", 0) / 1000)

        async def command(name: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
            result = await gs.command(name, args)
            track_power()
            if result["status"] != "ok":
                raise RuntimeError(f"{name} {result['status']}: {result['reason']}")
            return dict(result["result"])

        await command("light.set", {"device": "key", "intensity_pct": 80, "fade_s": 2})
        await command("light.set", {"device": "fill", "intensity_pct": 45.5, "cct_k": 4300})
        out.step("lights up: key 80 % (2 s fade), fill 45.5 % at 4300 K")
        await asyncio.sleep(2.5)
        take = await command("record", {"scene": "12A", "take": 3, "roll": "A007"})
        out.step(f"rolling: scene 12A take 3 on cam-a, cam-b from {take['timecode_in']}")
        end = time.monotonic() + record_s
        while time.monotonic() < end:
            await asyncio.sleep(0.5)
            track_power()
        cut = await command("cut")
        out.step("cut")
        await command("light.set", {"device": "key", "intensity_pct": 0, "fade_s": 1})
        await command("light.set", {"device": "fill", "intensity_pct": 0, "fade_s": 1})
        await asyncio.sleep(1.5)
        out.step("lights down")
        status = await command("status")
        return {
            "take": take,
            "cut": cut,
            "peak_w": peak["w"],
            "events": list(gs.events),
            "status": status,
            "received": gs.received,
        }


def _summary(report: dict[str, Any], monitor_lines: int) -> None:
    take = report["take"]
    print("\nSummary")
    print(f"  take     scene {take['scene']} take {take['take']} roll {take['roll']}")
    for camera, clip in sorted(report["cut"]["clips"].items()):
        started = take["clips"][camera]["timecode_in"]
        print(
            f"  {camera:<8} clip {clip['clip_id']}  {started} -> "
            f"{clip['timecode_out']}  {clip['frames']} frames  {clip['bytes'] / 1e9:.2f} GB"
        )
    starts = {c["timecode_in"] for c in take["clips"].values()}
    verdict = "on the same frame" if len(starts) == 1 else f"on DIFFERENT frames {sorted(starts)}"
    print(f"  sync     every camera started {verdict} (shot log take {take['take_id']})")
    print(f"  power    peak {report['peak_w']:.0f} W measured by the PDU")
    warnings = [e for e in report["events"] if e["severity"] in ("warning", "critical")]
    print(f"  events   {len(report['events'])} received, {len(warnings)} warnings or worse")
    print(f"  ground   {report['received']} MQTT messages; the monitor printed {monitor_lines}")


def run_demo(record_s: float = 10.0, keep: bool = False) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="cupola-demo-"))
    group = ProcessGroup()

    def interrupted(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupted)
    print("Cupola demo: a simulated shoot aboard the ISS")
    out = Printer()
    try:
        with Mosquitto(workdir / "broker") as broker:
            out.step(f"private mosquitto on 127.0.0.1:{broker.port}")
            bench = workdir / "bench.toml"
            bench.write_text(BENCH)
            _, entries = start_simulator(
                group, bench, workdir / "ports", 5, stderr=(workdir / "sim.log").open("wb")
            )
            paths = {e["device"]: e["path"] for e in entries}
            out.step("simulators on pseudo-terminals: " + ", ".join(sorted(paths)))
            keyring = workdir / "keyring.json"
            director = create_key(Role.DIRECTOR, "director-demo")
            add_to_keyring(keyring, director)
            config = workdir / "cupola.toml"
            config.write_text(_daemon_config(paths, broker.url(), workdir / "state", keyring))
            group.start(
                "daemon",
                cupola_argv("--log-level", "info", "daemon", "--config", str(config)),
                stderr=(workdir / "daemon.log").open("wb"),
            )
            monitor_log = workdir / "monitor.jsonl"
            group.start(
                "monitor",
                cupola_argv("monitor", "--broker", broker.url(), "--json"),
                stdout=monitor_log.open("wb"),
            )
            out.step("daemon and monitor started")
            report = asyncio.run(_scene(broker.url(), director, record_s, out))
            group.stop_all()
            _summary(report, sum(1 for _ in monitor_log.open()))
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything", file=sys.stderr)
        return 130
    except (RuntimeError, TimeoutError) as exc:
        print(f"\ndemo failed: {exc}\n(logs kept in {workdir})", file=sys.stderr)
        keep = True
        return 1
    else:
        if keep:
            print(f"\nLogs: {workdir}")
        return 0
    finally:
        group.stop_all()
        signal.signal(signal.SIGTERM, previous)
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
