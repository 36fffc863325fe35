"""A mixed rig end to end: a native camera and a Sony 9-pin deck rolling in one group, DMX/RDM
lights through an Enttec widget, a Modbus meter and relay board, against the real daemon."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from hil.broker import Mosquitto
from tests.daemon.conftest import Shoot, shoot
from tests.harness import until

BENCH = """
[bench]
seed = 5
[[device]]
name = "cam-a"
kind = "camera"
baud = 115200
pdu_channel = 4
[[device]]
name = "deck"
kind = "camera"
protocol = "sony9pin"
pdu_channel = 5
[[device]]
name = "key"
kind = "light"
protocol = "enttec-dmx"
pdu_channel = 0
model = { max_w = 60.0 }
gear = { widget = "dmx", dmx_address = 1 }
[[device]]
name = "fill"
kind = "light"
protocol = "enttec-dmx"
pdu_channel = 1
model = { max_w = 60.0 }
gear = { widget = "dmx", dmx_address = 3, personality = "led-panel-4ch" }
[[device]]
name = "practical"
kind = "light"
protocol = "enttec-dmx"
pdu_channel = 2
model = { max_w = 60.0 }
gear = { widget = "dmx", dmx_address = 11, rdm_uid = "7a70:00000011" }
[[device]]
name = "meter"
kind = "pdu"
protocol = "modbus-rtu"
"""
PER_DEVICE: dict[str, dict[str, Any]] = {
    "deck": {"protocol": "sony9pin", "baud": 38400, "timeout_ms": 100},
    "key": {
        "protocol": "enttec-dmx",
        "gear": {"dmx_address": 1},
        "priority": 10,
        "model": {"max_w": 60.0},
    },
    "fill": {
        "protocol": "enttec-dmx",
        "priority": 20,
        "model": {"max_w": 60.0},
        "gear": {"dmx_address": 3, "personality": "led-panel-4ch"},
    },
    "practical": {
        "protocol": "enttec-dmx",
        "priority": 30,
        "model": {"max_w": 60.0},
        "gear": {"dmx_address": 11, "rdm_uid": "7a70:00000011"},
    },
    "meter": {"protocol": "modbus-rtu", "baud": 9600, "timeout_ms": 300},
    "cam-a": {"pdu_channel": 4},
}
PER_DEVICE["deck"]["pdu_channel"] = 5
for light, channel in (("key", 0), ("fill", 1), ("practical", 2)):
    PER_DEVICE[light]["pdu_channel"] = channel
EXTRA = '[[group]]\nname = "main"\ncameras = ["cam-a", "deck"]\n[power]\ncap_w = 300.0\n'


def status(s: Shoot, device: str) -> dict[str, Any]:
    state: dict[str, Any] = s.ground.states[device]
    return state


async def test_mixed_rig_reports_syncs_and_meets_a_cap_cut_by_dmx(
    tmp_path: Path, broker: Mosquitto
) -> None:
    async with shoot(tmp_path, broker, BENCH, per_device=PER_DEVICE, extra=EXTRA) as s:
        # What each device reports, and what is Cupola's model.
        deck = status(s, "deck")
        assert deck["protocol"] == "sony9pin"
        assert {"temperature_cdeg", "draw_mw"} <= set(deck["not_reported"])
        assert deck["status"]["temperature_cdeg"] is None
        assert deck["camera_settings"] is None  # configured for the budgets, never read back
        assert status(s, "key")["not_reported"] and status(s, "key")["reports"] == []
        practical = status(s, "practical")
        assert "temperature" in practical["reports"] and "draw_mw" not in practical["not_reported"]
        assert not s.events("light.rdm_mismatch")  # discovery found it where configured
        meter = status(s, "meter")
        assert "channels.power_mw" in meter["not_reported"]
        assert meter["status"]["total_power_mw"] > 0

        # One take on a native camera and a 9-pin deck: both start on the same frame.
        await s.roll({"scene": "mix", "take": 1, "group": "main"})

        def both_rolling() -> bool:  # the first to confirm starts the take; cut once both do
            return all(s.sim.control.describe(n)["model"]["state"] == "RECORDING"
                       for n in ("cam-a", "deck"))  # fmt: skip

        await until(both_rolling, "cam-a and the deck recording", 10)
        await s.ok("cut", {"group": "main"})
        cam_clip = s.sim.control.describe("cam-a")["model"]["clips"][-1]
        deck_clip = s.sim.control.describe("deck")["model"]["clips"][-1]
        assert deck_clip["timecode_in"] == cam_clip["timecode_in"], (cam_clip, deck_clip)
        media = (await s.ok("budget.status"))["media"]["cameras"]
        assert media["deck"]["estimated"] == "bitrate x recorded time"
        assert "estimated" not in media["cam-a"]
        log = await s.ok("shotlog.query", {"scene": "mix"})
        assert {c["camera"] for c in log["takes"][0]["clips"]} == {"cam-a", "deck"}

        # Lights up (DMX), then the station cuts 300 -> 120 W: met by DMX dimming alone.
        for light in ("key", "fill", "practical"):
            await s.ok("light.set", {"device": light, "intensity_pct": 100})
        await s.ground.wait_for(lambda: total_w(s) > 170, 10, "lights up, measured by the meter")
        async with asyncio.timeout(10):  # the RDM light's own power sensor counts as measured
            while not (await s.ok("budget.status"))["power"]["loads"]["practical"]["measured"]:
                pass  # each round trip is one more status in between
        since = s.ground.events[-1]["ts"] if s.ground.events else 0.0
        await s.ok("power.cap.set", {"cap_w": 120.0, "reason": "station cut"})
        over = await s.wait_event("power.over_cap", since=since)
        # Nothing but the RDM light (at most) is measured: the cut is planned on the model.
        assert re.search(r"\((modelled|measured by the PDU for 1 of 6 loads)\)", over["message"])
        loads = (await s.ok("budget.status"))["power"]["loads"]
        assert not loads["key"]["measured"] and not loads["fill"]["measured"]  # DMX only
        await s.wait_event("power.cap_met", since=since, timeout=15)
        await s.ground.wait_for(lambda: total_w(s) <= 120.0, 10, "feed under 120 W")
        shed = s.events("power.shed", since=since)
        assert shed and {e["source"] for e in shed} <= {"key", "fill", "practical"}
        assert all(
            s.sim.control.describe(c)["model"]["state"] == "STANDBY" for c in ("cam-a", "deck")
        )

        # Gear polls are timed as native ones are: each link's lateness histogram fills.
        for device in ("deck", "key", "practical", "meter"):
            assert sum(status(s, device)["link"]["poll_late_histogram"].values()) > 0, device

        # The deck's and the widget's cables pulled: offline at once, back when plugged in.
        since = s.ground.events[-1]["ts"]
        for device in ("deck", "key", "meter"):  # "key": a fault on a fixture's line: its widget's
            s.sim.control.fault(device, "unplug", duration=1.0)
        for device in ("deck", "key", "fill", "practical", "meter"):
            await s.wait_event("device.offline", device, since=since)
            await s.wait_event("device.online", device, since=since, timeout=15)


def total_w(s: Shoot) -> float:
    """The feed as the simulated meter's physics has it (ground truth)."""
    return float(s.sim.control.describe("meter")["total_power_w"])
