"""camera.settings: only what is named changes, nothing off the wire's ranges is ever sent,
a rolling camera is left alone, and the next take carries the settings in force."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from textual.command import CommandInput, CommandPalette

from firmware_host.commands.camera_settings import (
    CameraSettingsArgs,
    merged,
    nominal_bitrate_kbps,
)
from firmware_host.commands.dispatcher import CommandRejected
from hil.broker import Mosquitto
from protocols.ground import Role
from protocols.messages.camera import CameraSettings, Codec
from protocols.timecode import FrameRate
from tests.daemon.conftest import shoot
from tests.harness import CAMERA_AND_LIGHT, DaemonProcess, camera_and_light_bench
from tests.tools.test_monitor_app import cell, until
from tools.ground_client import GroundSession
from tools.monitor.app import REDRAW_S, MonitorApp
from tools.monitor.view import NodeView

CURRENT = CameraSettings(
    width=3840, height=2160, rate=FrameRate.FPS_25, codec=Codec.PRORES_422_HQ,
    bitrate_kbps=700_000, shutter_decideg=1800, iso=800, white_balance_k=5600,
)  # fmt: skip
WIRE_RANGES = {
    "width": (640, 8192), "height": (480, 4320), "bitrate_kbps": (1_000, 3_000_000),
    "shutter_decideg": (10, 3600), "iso": (50, 25600), "white_balance_k": (2000, 10000),
}  # fmt: skip

requests = st.builds(
    CameraSettingsArgs,
    camera=st.just("cam-a"),
    iso=st.none() | st.integers(50, 25600),
    shutter_angle=st.none() | st.floats(1, 360),
    shutter_speed=st.none() | st.sampled_from(["1/50", "1/25", "1/2", "1/48.5", "1/0", "fast"]),
    white_balance_k=st.none() | st.integers(2000, 10000),
    frame_rate=st.none() | st.sampled_from([25.0, 24.0, 23.976, 60.0]),
    codec=st.none() | st.sampled_from(["prores_422_hq", "h265", "raw", "prores_422_lt"]),
    resolution=st.none() | st.sampled_from(["1920x1080", "8192x4320", "9000x100", "4k", "640x480"]),
    bitrate_mbps=st.none() | st.floats(1, 3000),
)


@given(requests)
def test_any_request_is_a_valid_wire_setting_or_a_clear_refusal(args: CameraSettingsArgs) -> None:
    try:
        settings = merged(CURRENT, args, FrameRate.FPS_25)
    except CommandRejected as refusal:
        assert str(refusal)
        return
    for field, (low, high) in WIRE_RANGES.items():
        assert low <= getattr(settings, field) <= high, field
    assert settings.rate is FrameRate.FPS_25
    assert settings.iso == (args.iso if args.iso is not None else CURRENT.iso)
    untouched = args.codec is None and args.resolution is None and args.bitrate_mbps is None
    if untouched and args.frame_rate is None:
        assert settings.bitrate_kbps == CURRENT.bitrate_kbps


def test_a_shutter_speed_becomes_the_angle_at_the_frame_rate() -> None:
    args = CameraSettingsArgs(camera="cam-a", shutter_speed="1/50")
    assert merged(CURRENT, args, FrameRate.FPS_25).shutter_decideg == 1800


def test_a_new_codec_brings_its_nominal_bitrate_for_the_budgets() -> None:
    args = CameraSettingsArgs(camera="cam-a", codec="h265", resolution="1920x1080")
    settings = merged(CURRENT, args, FrameRate.FPS_25)
    assert settings.bitrate_kbps == nominal_bitrate_kbps(Codec.H265, 1920, 1080, FrameRate.FPS_25)
    assert settings.bitrate_kbps == 37_500  # a quarter of UHD at 150 Mbit/s


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ({"frame_rate": 24}, "the project runs at 25 fps"),
        ({"resolution": "4k"}, "write it as 3840x2160"),
        ({"shutter_speed": "1/5"}, "is a 1800.0 degree shutter"),
        ({"shutter_angle": 90, "shutter_speed": "1/50"}, "not both"),
    ],
)
def test_what_cannot_be_is_refused_with_the_reason(args: dict[str, object], reason: str) -> None:
    with pytest.raises(CommandRejected, match=reason):
        merged(CURRENT, CameraSettingsArgs(camera="cam-a", **args), FrameRate.FPS_25)  # type: ignore[arg-type]


async def test_settings_reach_the_camera_and_the_next_take(
    tmp_path: Path, broker: Mosquitto
) -> None:
    async with shoot(tmp_path, broker, CAMERA_AND_LIGHT) as s:
        changed = await s.ok(
            "camera.settings",
            {
                "camera": "cam-a",
                "iso": 1600,
                "white_balance_k": 3200,
                "shutter_angle": 172.8,
                "look": "day",
            },
        )
        camera = s.sim.control.describe("cam-a")["model"]["settings"]
        await s.roll({"scene": "4", "take": 2})  # a cut inside the arm lead would cancel it
        rolling = await s.ground.command("camera.settings", {"camera": "cam-a", "iso": 400})
        await s.ok("cut")
        takes = (await s.ok("shotlog.query", {"limit": 1}))["takes"]
    assert changed["settings"]["iso"] == 1600 and changed["settings"]["shutter_angle"] == 172.8
    assert camera["iso"] == 1600 and camera["white_balance_k"] == 3200
    assert rolling["status"] == "rejected" and "rolling" in rolling["reason"]
    clip = takes[0]["clips"][0]
    assert clip["settings"]["iso"] == 1600 and clip["settings"]["white_balance_k"] == 3200
    assert changed["settings"]["look"] == "day", changed
    assert clip["settings"]["look"] == "day", clip


async def test_the_dp_changes_iso_and_white_balance_from_the_palette(
    tmp_path: Path, broker: Mosquitto
) -> None:
    _, credentials, config = camera_and_light_bench(tmp_path, broker.url())
    DaemonProcess(tmp_path, config).start()
    view = NodeView("test-node")
    director = credentials.keys[Role.DIRECTOR]
    app = MonitorApp(view, url=broker.url(), key=director, client_id="dp-console")
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: view.online and "cam-a" in view.devices, "node online")
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
        app.screen.query_one(
            CommandInput
        ).value = "camera.settings camera=cam-a iso=3200 white_balance_k=4300 look=bleach-bypass"
        await pilot.pause(2 * REDRAW_S)
        await pilot.press("enter")
        await until(
            pilot,
            lambda: any(c.name == "camera.settings" and c.status == "ok"
                        for c in view.commands.values()),
            "the settings command's result",
        )  # fmt: skip
        await app.send_command("record", {"scene": "9", "take": 1})
        await until(pilot, lambda: "recording" in cell(app, "#devices", "cam-a", 2), "rolling")
        await app.send_command("cut", {})
        await until(pilot, lambda: any(not t.rolling for t in view.takes_since(0)), "the cut")
    async with GroundSession(broker.url(), "test-node", key=credentials.flight) as ground:
        result = await ground.command("shotlog.query", {"limit": 1})
    settings = result["result"]["takes"][0]["clips"][0]["settings"]
    assert settings["iso"] == 3200 and settings["white_balance_k"] == 4300
    assert settings["look"] == "bleach-bypass"
