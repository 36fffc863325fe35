"""Take rules against the simulators and a real broker: a take starts on every camera or on
none, only what rolled is logged, and a camera in ERROR is recovered by command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hil.broker import Mosquitto
from tests.daemon.conftest import Shoot, shoot

# cam-b has blocked vents: at 400x physics speed it trips over-temperature within a second of
# rolling, and stays too hot to clear until its cooling is restored.
HOT_B = """
[bench]
speed = 400
[[device]]
name = "cam-a"
kind = "camera"
baud = 115200
[[device]]
name = "cam-b"
kind = "camera"
baud = 115200
faults = { cooling = 3.0 }
"""
GROUP = '[[group]]\nname = "main"\ncameras = ["cam-a", "cam-b"]\n'


async def overheat(s: Shoot, camera: str) -> None:
    """Roll `camera` alone until its over-temperature protection stops it (state ERROR)."""
    await s.ok("record", {"scene": "hot", "take": 1, "cameras": [camera]})
    await s.wait_event("camera.over_temperature", camera, timeout=20)
    await s.ground.wait_for(
        lambda: state_of(s, camera) == "error", 10, f"{camera} reported in ERROR"
    )


def state_of(s: Shoot, camera: str) -> str | None:
    status = s.ground.states[camera]["status"]
    return str(status["state"]) if status else None


def executions(s: Shoot, camera: str) -> int:
    """State-changing requests the simulated camera has acted on."""
    described: dict[str, Any] = s.sim.control.describe(camera)
    return int(described["executions"])


async def test_a_group_with_a_camera_in_error_arms_none_of_them(
    tmp_path: Path, broker: Mosquitto
) -> None:
    async with shoot(tmp_path, broker, HOT_B, extra=GROUP) as s:
        await overheat(s, "cam-b")
        before = executions(s, "cam-a")
        refused = await s.ground.command("record", {"scene": "1", "take": 1, "group": "main"})
        after = executions(s, "cam-a")
        clips = s.sim.control.describe("cam-a")["model"]["clips"]
    assert refused["status"] == "rejected", refused
    assert "cam-b is in ERROR (OVER_TEMPERATURE)" in refused["reason"]
    assert "camera.clear_error" in refused["reason"]
    assert after == before, "cam-a was sent a start (and a stop) although cam-b could not roll"
    assert clips == []


async def test_record_while_rolling_is_refused_before_any_camera_is_asked(
    tmp_path: Path, broker: Mosquitto
) -> None:
    async with shoot(tmp_path, broker, HOT_B.replace("faults = { cooling = 3.0 }", "")) as s:
        await s.ok("record", {"scene": "2", "take": 1})
        before = executions(s, "cam-a")
        refused = await s.ground.command("record", {"scene": "2", "take": 2})
        after = executions(s, "cam-a")
        await s.ok("cut")
    assert refused["status"] == "rejected", refused
    assert "a take is rolling on cam-a, cam-b: cut it first" in refused["reason"]
    assert after == before


async def test_cut_with_nothing_rolling_says_so(tmp_path: Path, broker: Mosquitto) -> None:
    async with shoot(tmp_path, broker, HOT_B.replace("faults = { cooling = 3.0 }", "")) as s:
        refused = await s.ground.command("cut")
        await s.ok("record", {"scene": "3", "take": 1, "cameras": ["cam-a"]})
        cut = await s.ok("cut")
    assert refused["status"] == "rejected", refused
    assert refused["reason"] == "nothing to cut: no take is rolling on cam-a, cam-b"
    assert set(cut["clips"]) == {"cam-a"}


async def test_a_camera_in_error_is_recovered_by_command_once_cooled(
    tmp_path: Path, broker: Mosquitto
) -> None:
    async with shoot(tmp_path, broker, HOT_B) as s:
        await overheat(s, "cam-b")
        too_hot = await s.ground.command("camera.clear_error", {"camera": "cam-b"})
        assert s.sim.control.describe("cam-b")["model"]["state"] == "ERROR"
        s.sim.control.fault("cam-b", "cooling", 1.0)  # vents cleared: it cools to ~37 C

        def cooled() -> bool:
            model = s.sim.control.describe("cam-b")["model"]
            return float(model["temperature_c"]) < 59.0

        await s.ground.wait_for(cooled, 20, "cam-b below its resume temperature")
        cleared = await s.ok("camera.clear_error", {"camera": "cam-b"})
        event = await s.wait_event("camera.error_cleared", "cam-b")
        await s.ok("record", {"scene": "4", "take": 1, "cameras": ["cam-b"]})
        await s.wait_event("camera.record_started", "cam-b")
        await s.ok("cut")
        nothing = await s.ground.command("camera.clear_error", {"camera": "cam-b"})
    assert too_hot["status"] == "rejected", too_hot
    assert "cam-b keeps its error" in too_hot["reason"]
    assert "OVER_TEMPERATURE" in too_hot["reason"] and "cool below 60 C" in too_hot["reason"]
    assert cleared == {"camera": "cam-b", "cleared": "OVER_TEMPERATURE", "state": "standby"}
    assert event["data"]["error"] == "OVER_TEMPERATURE"
    assert nothing["status"] == "rejected" and "no error to clear" in nothing["reason"]
