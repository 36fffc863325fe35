"""The onboard daemon against simulators and a real broker: what the crew relies on."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from hil.broker import Mosquitto
from tests.daemon.conftest import shoot
from tests.harness import CAMERA_AND_LIGHT

TWO_LIGHTS = """
[bench]
seed = 11
[[device]]
name = "key"
kind = "light"
baud = 115200
faults = { ber = 1e-4 }
[[device]]
name = "fill"
kind = "light"
baud = 115200
faults = { ber = 1e-4 }
"""

THREE_CAMERAS = """
[bench]
seed = 5
[[device]]
name = "cam-a"
kind = "camera"
baud = 115200
model = { drift_ppm = 60.0, tc_offset_s = 2.31 }
[[device]]
name = "cam-b"
kind = "camera"
baud = 115200
model = { drift_ppm = -45.0, tc_offset_s = -0.77 }
[[device]]
name = "cam-c"
kind = "camera"
baud = 115200
model = { drift_ppm = 10.0, tc_offset_s = 11.02 }
"""


async def test_every_command_is_answered_once_on_a_noisy_line(
    tmp_path: Path, broker: Mosquitto
) -> None:
    async with shoot(tmp_path, broker, TWO_LIGHTS, device_options={"retries": 4}) as s:
        outcomes = []
        for n in range(60):
            device = ("key", "fill")[n % 2]
            result = await s.ground.command(
                "light.set", {"device": device, "intensity_pct": 1 + n, "fade_s": 0}
            )
            outcomes.append(result["status"])
        assert len(outcomes) == 60 and set(outcomes) <= {"ok", "failed"}
        assert outcomes.count("ok") >= 55
        for name in ("key", "fill"):
            described = s.sim.control.describe(name)
            assert described["max_executions"] == 1, "a command acted twice"
            assert described["link"]["bits_flipped"] > 0
        links = (await s.ok("health"))["links"]
    # the host caught the damage it received (a flipped bit fails the CRC, or breaks the
    # framing when it lands on a delimiter or a COBS code) and retried what it lost
    caught = sum(links[n]["crc_errors"] + links[n]["framing_errors"] for n in ("key", "fill"))
    assert caught > 0
    assert sum(links[n]["retries"] for n in ("key", "fill")) > 0


async def test_three_cameras_start_on_the_same_timecode_frame(
    tmp_path: Path, broker: Mosquitto
) -> None:
    async with shoot(tmp_path, broker, THREE_CAMERAS) as s:
        take = await s.ok("record", {"scene": "21", "take": 4, "roll": "B002"})
        await asyncio.sleep(2.0)
        await s.ok("cut")
        clips = {
            name: s.sim.control.describe(name)["model"]["clips"][-1]
            for name in ("cam-a", "cam-b", "cam-c")
        }
    starts = {clip["timecode_in"] for clip in clips.values()}
    assert starts == {take["start_frame"]}, clips
    assert all(c["closed"] and c["scene"] == "21" and c["take"] == 4 for c in clips.values())
    frames = [c["frames"] for c in clips.values()]
    assert max(frames) - min(frames) <= 2  # the cut is a command, not frame-accurate


async def test_a_device_reset_mid_take_is_detected_and_the_log_reconciled(
    tmp_path: Path, broker: Mosquitto
) -> None:
    async with shoot(tmp_path, broker, THREE_CAMERAS) as s:
        take = await s.roll({"scene": "3", "take": 1})
        await asyncio.sleep(1.0)
        s.sim.control.fault("cam-b", "reset")
        await s.wait_event("device.reset", "cam-b")
        await s.wait_event("shotlog.reconciled", "cam-b")
        await asyncio.sleep(1.0)
        cut = await s.ok("cut")
        log = await s.ok("shotlog.query", {"scene": "3"})
    assert set(cut["clips"]) == {"cam-a", "cam-c"}  # cam-b stopped at its reset
    (entry,) = log["takes"]
    assert entry["take_id"] == take["take_id"] and entry["status"] == "recovered"
    states = {c["camera"]: c["state"] for c in entry["clips"]}
    assert states == {"cam-a": "closed", "cam-b": "recovered", "cam-c": "closed"}
    recovered = next(c for c in entry["clips"] if c["camera"] == "cam-b")
    assert recovered["frames"] > 0 and recovered["bytes"] > 0


async def test_a_vanished_port_goes_offline_and_comes_back(
    tmp_path: Path, broker: Mosquitto
) -> None:
    async with shoot(tmp_path, broker, THREE_CAMERAS) as s:
        s.sim.control.fault("cam-a", "unplug", duration=2.0)
        offline = await s.wait_event("device.offline", "cam-a")
        refused = await s.ground.command("record", {"scene": "1", "take": 1, "cameras": ["cam-a"]})
        assert refused["status"] == "rejected" and "offline" in refused["reason"]
        online = await s.wait_event("device.online", "cam-a", since=offline["ts"])
        assert online["data"]["reconnected"]
        await s.ok("record", {"scene": "1", "take": 2, "cameras": ["cam-a"]})
        await s.ok("cut")


async def test_a_stuck_device_is_declared_offline_within_its_timeout(
    tmp_path: Path, broker: Mosquitto
) -> None:
    bench = THREE_CAMERAS.split('[[device]]\nname = "cam-b"', maxsplit=1)[0]
    async with shoot(tmp_path, broker, bench, device_options={"offline_after_s": 1.5}) as s:
        record = s.sim.control.fault("cam-a", "stuck", True)
        event = await s.wait_event("device.offline", "cam-a", timeout=5)
    # the limit, plus at most one poll period (5 Hz) and one attempt's timeout
    assert event["ts"] - record["wall"] <= 1.5 + 0.2 + 0.15 * 3 + 0.2


async def test_kill_9_mid_take_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, broker: Mosquitto
) -> None:
    bench = THREE_CAMERAS.split('[[device]]\nname = "cam-c"', maxsplit=1)[0]
    async with shoot(tmp_path, broker, bench, processes=True) as s:
        first = await s.roll({"scene": "9", "take": 1})
        await asyncio.sleep(1.0)
        await s.ok("cut")
        second = await s.roll({"scene": "9", "take": 2})
        await asyncio.sleep(0.5)
        s.daemon.kill()  # SIGKILL: no chance to write anything more
        s.sim.control.fault("cam-b", "reset")  # while the daemon is dead, cam-b's take ends
        await asyncio.sleep(1.0)
        s.restart_daemon()
        await s.ground.wait_for(lambda: len(s.ground.births) >= 2, 20, "a second birth")
        await s.ground.wait_for(
            lambda: s.ground.online("cam-a", "cam-b"), 20, "cameras adopted again"
        )
        await s.wait_event("shotlog.reconciled", "cam-b")
        cut = await s.ok("cut")
        log = await s.ok("shotlog.query", {"scene": "9"})
    assert set(cut["clips"]) == {"cam-a"}  # still rolling after the restart: cut normally
    takes = {t["take"]: t for t in log["takes"]}
    assert sorted(takes) == [1, 2]
    assert takes[1]["take_id"] == first["take_id"] and takes[1]["status"] == "cut"
    assert all(c["state"] == "closed" for c in takes[1]["clips"])
    assert takes[2]["take_id"] == second["take_id"]
    states = {c["camera"]: c["state"] for c in takes[2]["clips"]}
    assert states == {"cam-a": "closed", "cam-b": "recovered"}
    all_clips = [(c["camera"], c["clip_id"]) for t in log["takes"] for c in t["clips"]]
    assert len(all_clips) == len(set(all_clips)) == 4


SEQUENCE = """
name = "scene 14"

[[step]]
command = "light.set"
args = { device = "key", intensity_pct = 70, fade_s = 0.5 }

[[step]]
after = 0.6
command = "record"
args = { scene = "14", take = 1 }

[[step]]
wait_until = { device = "cam-a", field = "state", equals = "recording" }
timeout_s = 3

[[step]]
after = 1.0
when = { device = "cam-a", field = "state", equals = "recording" }
command = "cut"

[[step]]
command = "light.set"
args = { device = "key", intensity_pct = 0 }
"""


async def test_a_stored_sequence_runs_in_order(tmp_path: Path, broker: Mosquitto) -> None:
    async with shoot(tmp_path, broker, CAMERA_AND_LIGHT) as s:
        loaded = await s.ok("sequence.load", {"script": SEQUENCE})
        assert loaded == {"name": "scene 14", "steps": 5}
        await s.ok("sequence.start", {"name": "scene 14"})
        await s.wait_event("sequence.finished", timeout=15)
        steps = [e for e in s.ground.events if e["name"].startswith("sequence.step")]
        clips = s.sim.control.describe("cam-a")["model"]["clips"]
        light = s.sim.control.describe("key")["model"]
    assert [e["data"]["step"] for e in steps] == [1, 2, 3, 4, 5]
    assert all(e["name"] == "sequence.step" for e in steps)
    assert len(clips) == 1 and clips[0]["scene"] == "14" and clips[0]["closed"]
    assert light["target_permille"] == 0


async def test_a_sequence_can_be_aborted_cleanly(tmp_path: Path, broker: Mosquitto) -> None:
    slow = SEQUENCE.replace("after = 0.6", "after = 30")
    async with shoot(tmp_path, broker, CAMERA_AND_LIGHT) as s:
        await s.ok("sequence.load", {"script": slow})
        await s.ok("sequence.start", {"name": "scene 14"})
        await s.wait_event("sequence.step")
        await s.ok("sequence.pause")
        paused = await s.ok("sequence.status")
        started = time.monotonic()
        status = await s.ok("sequence.abort")
        assert time.monotonic() - started < 2
        await s.wait_event("sequence.aborted")
        clips = s.sim.control.describe("cam-a")["model"]["clips"]
    assert paused["state"] == "paused" and status["state"] == "aborted"
    assert clips == []  # the record step never ran


async def test_bad_sequences_are_refused_with_the_reason(tmp_path: Path, broker: Mosquitto) -> None:
    cases = {
        SEQUENCE.replace('"record"', '"recrod"'): "unknown command 'recrod'",
        SEQUENCE.replace("take = 1 }", "take = 0 }"): "step 2",
        SEQUENCE.replace('field = "state"', 'field = "mood"', 1): "does not report 'mood'",
        SEQUENCE.replace('device = "cam-a"', 'device = "cam-z"', 1): "no device 'cam-z'",
        "name = 'x'": "step",
    }
    async with shoot(tmp_path, broker, CAMERA_AND_LIGHT) as s:
        for script, reason in cases.items():
            result = await s.ground.command("sequence.load", {"script": script})
            assert result["status"] == "rejected" and reason in result["reason"], result


async def test_when_the_daemon_dies_lights_fall_back_and_cameras_keep_rolling(
    tmp_path: Path, broker: Mosquitto
) -> None:
    failsafe = "[failsafe]\nhost_timeout_s = 1.0\nlight_pct = 10\n"
    async with shoot(tmp_path, broker, CAMERA_AND_LIGHT, extra=failsafe, processes=True) as s:
        await s.ok("light.set", {"device": "key", "intensity_pct": 80})
        await s.ok("record", {"scene": "5", "take": 1})
        s.daemon.kill()
        await asyncio.sleep(1.5 + 2.2)  # host timeout, then the 2 s fade
        light = s.sim.control.describe("key")["model"]
        camera = s.sim.control.describe("cam-a")["model"]
    assert light["target_permille"] == 100 and light["intensity_permille"] == 100
    assert camera["state"] == "RECORDING"


DRIFTING = """
[[device]]
name = "cam-a"
kind = "camera"
baud = 115200
model = { drift_ppm = 6000.0 }
"""


async def test_drift_past_half_a_frame_raises_one_event_and_is_rejammed(
    tmp_path: Path, broker: Mosquitto
) -> None:
    project = "[project]\ndrift_check_s = 1.0\n"
    async with shoot(tmp_path, broker, DRIFTING, extra=project) as s:
        drift = await s.wait_event("timecode.drift", "cam-a", timeout=15)
        rejam = await s.wait_event("timecode.rejammed", "cam-a")
        cleared = await s.wait_event("timecode.drift_cleared", "cam-a")
        # ground truth: the simulated camera's own clock at the instants the daemon read it
        truth = {
            name: s.sim.control.clock_offset("cam-a", event["data"]["measured_at"]) * 25
            for name, event in (("drift", drift), ("rejam", rejam))
        }
    assert drift["data"]["offset_frames"] > 0.5
    for name, event in (("drift", drift), ("rejam", rejam)):
        reported, uncertainty = event["data"]["offset_frames"], event["data"]["uncertainty_frames"]
        # within the reported bound (which also covers 6000 ppm of drift across it), give or
        # take the rounding of the event's figures
        assert abs(reported - truth[name]) <= uncertainty * 1.01 + 2e-4, (name, event, truth)
    assert abs(truth["rejam"]) < 0.1  # the re-jam really put the camera back on the reference
    assert drift["ts"] <= rejam["ts"] <= cleared["ts"]
    until_cleared = [e for e in s.events("timecode.drift", "cam-a") if e["ts"] <= cleared["ts"]]
    assert len(until_cleared) == 1  # one event per crossing, not one per reading


HOT = """
[bench]
speed = 100
[[device]]
name = "cam-a"
kind = "camera"
baud = 115200
faults = { cooling = 3.0 }
"""


async def test_a_heating_camera_crosses_yellow_then_red_once_each(
    tmp_path: Path, broker: Mosquitto
) -> None:
    async with shoot(tmp_path, broker, HOT) as s:
        await s.ok("record", {"scene": "8", "take": 1})
        await s.wait_event("camera.over_temperature", "cam-a", timeout=40)
        await asyncio.sleep(1.0)
    names = [e["name"] for e in s.ground.events if e["name"].startswith("limit.camera.temperature")]
    assert names == ["limit.camera.temperature.yellow", "limit.camera.temperature.red"]
    assert any(e["name"] == "camera.error_report" for e in s.ground.events)


SLOW_LINE = """
[[device]]
name = "cam-a"
kind = "camera"
baud = 115200
model = { drift_ppm = 0.0 }
faults = { latency_ms = 8.0 }
"""


async def test_a_slow_line_widens_the_uncertainty_and_never_hides_the_offset(
    tmp_path: Path, broker: Mosquitto
) -> None:
    """8 ms each way: the jam lands 8 ms late, and a reading that assumed the camera acts at
    send + wire time would call the result perfect. The offset is measured instead, with a
    bound that holds the simulator's own clock."""
    async with shoot(tmp_path, broker, SLOW_LINE, device_options={"timeout_ms": 300}) as s:
        jammed = (await s.ok("camera.jam", {"cameras": ["cam-a"]}))["jammed"]["cam-a"]
        truth_us = s.sim.control.clock_offset("cam-a", jammed["measured_at"]) * 1e6
    assert abs(jammed["offset_us"] - truth_us) <= jammed["uncertainty_us"] + 2
    assert truth_us < -7000  # the late jam is real, and now it is reported
    assert jammed["uncertainty_us"] >= 7000
