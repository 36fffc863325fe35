"""The take controller's logging, in process: a confirmation that cannot be written is
reported once and retried, never an exception in the link's receive path."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from firmware_host.events import Event, EventBus
from firmware_host.workflow.shotlog import ShotLog
from firmware_host.workflow.takes import ArmedTake, TakeController
from firmware_host.workflow.timecode import ReferenceClock
from protocols.messages.common import DeviceEvent, EventCode, Severity
from protocols.timecode import FrameRate

STARTED = DeviceEvent(code=EventCode.RECORD_STARTED, severity=Severity.INFO, value=0, detail="")


def test_a_take_the_log_cannot_take_is_reported_once_and_logged_when_it_can(
    tmp_path: Path,
) -> None:
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe(events.append)
    shotlog = ShotLog(tmp_path / "shotlog.db")
    power: Any = None  # neither budget is reached by a confirmation
    takes = TakeController({}, ReferenceClock(FrameRate.FPS_25), bus, shotlog, {},
                           power=power, data=power)  # fmt: skip
    armed = ArmedTake(scene="5", take=1, roll="A001", start_frame=900, settings={})
    armed.clips["cam-a"] = (3, 900)
    takes._armed["cam-a"] = armed
    camera: Any = SimpleNamespace(name="cam-a", kind="camera")
    shotlog.db.close()  # the state disk went away
    takes.on_camera_event(camera, STARTED)
    takes.on_camera_event(camera, STARTED)
    unlogged = [e for e in events if e.name == "take.unlogged"]
    assert len(unlogged) == 1 and unlogged[0].severity is Severity.CRITICAL
    assert "shotlog.db" in unlogged[0].data["file"]
    takes.shotlog = ShotLog(tmp_path / "shotlog.db")  # back
    takes.on_camera_event(camera, STARTED)
    takes.on_camera_event(camera, STARTED)
    (take,) = takes.shotlog.query()
    assert take["scene"] == "5" and [c["clip_id"] for c in take["clips"]] == [3]
    assert [e.name for e in events].count("take.started") == 1
