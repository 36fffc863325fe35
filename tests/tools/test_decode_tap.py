"""`cupola decode --tap`: a live link watched through the daemon, which keeps its port."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from hil.broker import Mosquitto
from hil.processes import child_preexec
from tests.harness import DaemonProcess, camera_and_light_bench, cupola, interrupt
from tests.tools.test_up import Lines
from tools.ground_client import GroundSession


def _watch(tap: Path, device: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cupola("decode", "--tap", str(tap), "--device", device, "--json"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=child_preexec,  # noqa: PLW1509 - so its Ctrl-C reaches it
    )  # fmt: skip


async def test_both_directions_are_decoded_live_while_the_daemon_keeps_the_port(
    tmp_path: Path, broker: Mosquitto
) -> None:
    _, credentials, config = camera_and_light_bench(tmp_path, broker.url())
    DaemonProcess(tmp_path, config).start()
    async with GroundSession(broker.url(), "test-node", key=credentials.flight) as ground:
        await ground.wait_for(lambda: ground.online("cam-a", "key"), 20, "devices online")
        tap = tmp_path / "state" / "tap.sock"
        watch = _watch(tap, "cam-a")
        lines = Lines(watch)
        try:
            seen: list[dict[str, Any]] = []
            while {"to_device", "from_device"} - {e["direction"] for e in seen if ok(e)}:
                seen += [json.loads(line) for line in lines.until('"direction"', timeout=20)]
            result = await ground.command("status")  # the daemon still drives the camera
        finally:
            interrupt(watch)
    assert result["status"] == "ok"
    directions = {entry["direction"] for entry in seen}
    assert directions == {"to_device", "from_device"}
    # a reader joining mid-frame sees that frame's tail named as such (not as damage, so the
    # watch still exits 0); from the first whole frame on, every record decodes
    first = next(index for index, entry in enumerate(seen) if ok(entry))
    assert all(ok(entry) or entry["status"] == "joined" for entry in seen[:first]), seen
    assert all(ok(entry) for entry in seen[first:]), seen
    kinds = {(entry["direction"], entry.get("kind")) for entry in seen}
    assert ("to_device", "request") in kinds
    assert watch.returncode == 0
    assert watch.stderr is not None
    summary = watch.stderr.read()
    assert "Traceback" not in summary


def ok(entry: dict[str, Any]) -> bool:
    return bool(entry.get("status") == "ok")


def test_a_wrong_device_or_no_daemon_is_one_clear_line(tmp_path: Path, broker: Mosquitto) -> None:
    missing = subprocess.run(
        cupola("decode", "--tap", str(tmp_path / "tap.sock"), "--device", "cam-a"),
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert missing.returncode == 66
    assert missing.stderr.strip().startswith("cupola decode: cannot reach the link tap at")
    assert missing.stderr.count("\n") == 1
    no_device = subprocess.run(cupola("decode", "--tap", str(tmp_path / "tap.sock")),
                               capture_output=True, text=True, check=False)  # fmt: skip
    assert no_device.returncode == 64 and "--tap needs --device" in no_device.stderr
