"""The whole path, end to end: simulators on ptys, daemon, real mosquitto, ground subscriber."""

from __future__ import annotations

from pathlib import Path

from hil.broker import Mosquitto
from tests.harness import (
    Credentials,
    DaemonProcess,
    SimProcess,
    camera_and_light_bench,
    frames_recorded,
)
from tools.ground_client import GroundSession


def _collapse(values: list[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        if not out or out[-1] != value:
            out.append(value)
    return out


def _start(tmp_path: Path, broker: Mosquitto) -> tuple[SimProcess, DaemonProcess, Credentials]:
    sim, credentials, config = camera_and_light_bench(tmp_path, broker.url())
    return sim, DaemonProcess(tmp_path, config).start(), credentials


async def test_camera_and_light_changes_reach_the_ground(tmp_path: Path, broker: Mosquitto) -> None:
    _, _, credentials = _start(tmp_path, broker)
    async with GroundSession(broker.url(), "test-node", key=credentials.flight) as gs:
        await gs.wait_for(lambda: gs.online("cam-a", "key"), 20, "devices online")

        result = await gs.command("light.set", {"device": "key", "intensity_pct": 62.5})
        assert result["status"] == "ok", result

        def light_at(permille: int) -> bool:
            status = gs.states["key"]["status"]
            return bool(status and status["intensity_permille"] == permille)

        await gs.wait_for(lambda: light_at(625), 10, "key light at 62.5 %")

        record = await gs.command("record", {"scene": "7", "take": 2})
        assert record["status"] == "ok", record

        def camera_state() -> str | None:
            status = gs.states["cam-a"]["status"]
            return status["state"] if status else None

        await frames_recorded(gs, ("cam-a",))
        cut = await gs.command("cut")
        assert cut["status"] == "ok", cut
        await gs.wait_for(lambda: camera_state() == "standby", 10, "cam-a back to standby")

    states = [
        body["status"]["state"]
        for device, body in gs.state_log
        if device == "cam-a" and body.get("status")
    ]
    core = [s for s in _collapse(states) if s in ("standby", "recording")]
    assert _collapse(core)[-3:] == ["standby", "recording", "standby"]
    levels = [
        body["status"]["intensity_permille"]
        for device, body in gs.state_log
        if device == "key" and body.get("status")
    ]
    assert levels[0] == 0 and levels[-1] == 625
    assert cut["result"]["clips"]["cam-a"]["frames"] > 0


async def test_killed_simulator_goes_offline_and_comes_back(
    tmp_path: Path, broker: Mosquitto
) -> None:
    sim, daemon, credentials = _start(tmp_path, broker)
    async with GroundSession(broker.url(), "test-node", key=credentials.flight) as gs:
        await gs.wait_for(lambda: gs.online("cam-a", "key"), 20, "devices online")

        sim.kill()

        def offline(name: str) -> bool:
            return any(e["name"] == "device.offline" and e["source"] == name for e in gs.events)

        await gs.wait_for(lambda: offline("cam-a") and offline("key"), 10, "offline events")
        await gs.wait_for(lambda: not gs.states["cam-a"]["online"], 5, "cam-a state offline")
        assert daemon.alive, "the daemon must survive its devices"

        sim.start()

        def back(name: str) -> bool:
            return any(
                e["name"] == "device.online" and e["source"] == name and e["data"]["reconnected"]
                for e in gs.events
            )

        await gs.wait_for(lambda: back("cam-a") and back("key"), 15, "devices back online")
        await gs.wait_for(lambda: gs.online("cam-a", "key"), 5, "states back online")
    assert daemon.stop() == 0
