"""The device snapshot the node publishes carries what the ground monitor shows of it."""

from __future__ import annotations

import msgspec

from firmware_host.config import DeviceConfig
from firmware_host.devices.agent import DeviceAgent
from firmware_host.events import EventBus
from firmware_host.workflow.timecode import ReferenceClock
from protocols import ground
from protocols.messages.camera import CameraSettings, Codec
from protocols.timecode import FrameRate


def agent(**config: object) -> DeviceAgent:
    return DeviceAgent(
        msgspec.convert(config, DeviceConfig),
        EventBus(),
        ReferenceClock(FrameRate.FPS_25, wall=lambda: 0.0),
        on_update=lambda _: None,
    )


def test_a_camera_snapshot_carries_its_settings_and_its_pdu_channel() -> None:
    camera = agent(name="cam-a", kind="camera", port="/dev/null", pdu_channel=2)
    camera.camera_settings = CameraSettings(
        width=3840, height=2160, rate=FrameRate.FPS_25, codec=Codec.PRORES_422_HQ,
        bitrate_kbps=700_000, shutter_decideg=1800, iso=800, white_balance_k=5600,
    )  # fmt: skip
    snapshot = camera.snapshot()
    assert snapshot.pdu_channel == 2
    assert snapshot.camera_settings is not None
    assert snapshot.camera_settings["iso"] == 800
    assert snapshot.camera_settings["codec"] == "prores_422_hq"
    # as GROUND.md documents it, once it has crossed the wire as JSON
    wire = msgspec.json.decode(msgspec.json.encode(snapshot))
    assert msgspec.convert(wire, ground.DeviceSnapshot) == snapshot


def test_a_device_never_read_or_not_wired_says_so() -> None:
    light = agent(name="key", kind="light", port="/dev/null")
    snapshot = light.snapshot()
    assert snapshot.pdu_channel is None and snapshot.camera_settings is None
    assert snapshot.online is False and snapshot.offline_reason == "not connected yet"
