"""Take rules against the simulators and a real broker: a take starts on every camera or on
none, only what rolled is logged, and a camera in ERROR is recovered by command."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from hil.broker import Mosquitto
from tests.daemon.conftest import Shoot, shoot
from tests.harness import frames_recorded

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


async def logged_clips(s: Shoot, scene: str) -> list[dict[str, Any]]:
    log = await s.ok("shotlog.query", {"scene": scene})
    return [clip for take in log["takes"] for clip in take["clips"]]


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
        await s.roll({"scene": "3", "take": 1, "cameras": ["cam-a"]})
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


LONG_LEAD = "[project]\nrecord_lead_ms = 5000\n"  # room to cut before the start frame
TWO_CAMERAS = HOT_B.replace("faults = { cooling = 3.0 }", "").replace("speed = 400", "speed = 1")


async def test_a_cut_inside_the_lead_cancels_the_take_and_logs_nothing(
    tmp_path: Path, broker: Mosquitto
) -> None:
    async with shoot(tmp_path, broker, TWO_CAMERAS, extra=LONG_LEAD) as s:
        armed = await s.ok("record", {"scene": "6", "take": 1})
        cut = await s.ok("cut")
        cancelled = await s.wait_event("take.cancelled")
        log = await s.ok("shotlog.query", {"scene": "6"})
        clips = {n: s.sim.control.describe(n)["model"]["clips"] for n in ("cam-a", "cam-b")}
        rolled = await s.roll({"scene": "6", "take": 2})  # the next take rolls and is logged
        await s.ok("cut")
        after = await s.ok("shotlog.query", {"scene": "6"})
    assert armed["state"] == "armed" and "take_id" not in armed
    assert cut["clips"] == {} and set(cut["cancelled"]) == {"cam-a", "cam-b"}
    assert set(cancelled["data"]["cameras"]) == {"cam-a", "cam-b"}
    assert log["takes"] == []  # no 0-frame 'cut' take the cameras never made
    assert clips == {"cam-a": [], "cam-b": []}
    assert not s.events("take.started", since=0) or all(
        e["data"]["take"] == 2 for e in s.events("take.started")
    )
    (take,) = after["takes"]
    assert take["take_id"] == rolled["take_id"] and take["take"] == 2


async def test_a_take_that_rolled_is_logged_once(tmp_path: Path, broker: Mosquitto) -> None:
    async with shoot(tmp_path, broker, TWO_CAMERAS) as s:
        started = await s.roll({"scene": "7", "take": 1})
        await frames_recorded(s.ground, ("cam-a", "cam-b"))
        cut = await s.ok("cut")
        log = await s.ok("shotlog.query", {"scene": "7"})
    (take,) = log["takes"]
    assert take["take_id"] == started["take_id"] and take["status"] == "cut"
    assert len(s.events("take.started")) == 1
    assert {c["camera"]: c["state"] for c in take["clips"]} == {
        "cam-a": "closed",
        "cam-b": "closed",
    }
    assert all(c["frames"] > 0 for c in take["clips"])
    assert set(cut["clips"]) == {"cam-a", "cam-b"} and cut["cancelled"] == {}


async def test_a_take_armed_when_the_daemon_died_is_logged_after_the_restart(
    tmp_path: Path, broker: Mosquitto
) -> None:
    async with shoot(tmp_path, broker, TWO_CAMERAS, extra=LONG_LEAD, processes=True) as s:
        armed = await s.ok("record", {"scene": "8", "take": 1})
        s.daemon.kill()  # before any camera rolled: nothing of this take is in the log yet
        s.restart_daemon()
        await s.ground.wait_for(lambda: len(s.ground.births) >= 2, 20, "a second birth")
        await s.ground.wait_for(lambda: s.ground.online("cam-a", "cam-b"), 20, "adopted again")
        # Found armed (restarted within the lead) or rolling (restarted after it): either
        # way the take is logged once its cameras roll, with both clips under it.
        deadline = asyncio.get_running_loop().time() + 15
        while len(await logged_clips(s, "8")) < 2:
            assert asyncio.get_running_loop().time() < deadline, "take never logged"
            await asyncio.sleep(0.1)
        await frames_recorded(s.ground, ("cam-a", "cam-b"))
        cut = await s.ok("cut")
        log = await s.ok("shotlog.query", {"scene": "8"})
    assert set(cut["clips"]) == {"cam-a", "cam-b"}
    (take,) = log["takes"]  # one take, both clips under it: nothing orphaned, nothing twice
    assert take["start_frame"] == armed["start_frame"] and take["status"] == "cut"
    assert sorted(c["camera"] for c in take["clips"]) == ["cam-a", "cam-b"]
    assert all(c["state"] == "closed" and c["frames"] > 0 for c in take["clips"])
