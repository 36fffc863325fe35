"""The main screen, pinned as SVG: a nominal take, a station power emergency, a light whose
cable was pulled (a long offline reason), and a PDU with a channel off and one tripped.

The screens replay captures recorded from the scenario library (tests/tools/captures,
`python -m tests.tools.record_capture`), with the clock stopped at the capture's last
message, so every run draws the same screen. After a deliberate change to the screen:
`pytest tests/tools/test_monitor_snapshots.py --snapshot-update`, and look at the SVGs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tools.monitor.app import MonitorApp
from tools.monitor.replay import load_capture
from tools.monitor.view import NodeView
from tools.scenario.runner import NODE

CAPTURES = Path(__file__).parent / "captures"
SIZE = (160, 48)


def replay(name: str) -> MonitorApp:
    view = NodeView(NODE)
    last = load_capture(CAPTURES / f"{name}.jsonl", view)
    return MonitorApp(view, clock=lambda: last, subtitle=f"replay: {name}", redraw_every_s=None)


@pytest.mark.parametrize("capture", ["nominal", "power-emergency", "port-unplug"])
def test_main_screen(capture: str, snap_compare: Callable[..., bool]) -> None:
    assert snap_compare(replay(capture), terminal_size=SIZE)


def test_a_pdu_of_eight_channels(snap_compare: Callable[..., bool]) -> None:
    """Channel 5 switched off, channel 6 tripped: each reads so in the PDU panel."""
    app = replay("nominal")
    view, at = app.view, app.clock()
    pdu = view.devices["pdu"]
    channels = [
        {**channel, "on": channel["channel"] not in (5, 6), "tripped": channel["channel"] == 6}
        for channel in pdu["status"]["channels"]
    ]
    assert len(channels) == 8
    body = {**pdu, "status": {**pdu["status"], "channels": channels}}
    envelope = {"v": 1, "node": NODE, "kind": "state", "ts": at, "body": body}
    view.absorb(f"cupola/v1/{NODE}/state/pdu", json.dumps(envelope).encode(), at)
    assert snap_compare(app, terminal_size=SIZE)


def test_the_pulled_cable_shows_its_reason_clipped_and_whole_in_the_event_log() -> None:
    app = replay("port-unplug")
    reason = app.view.devices["key"]["offline_reason"]
    assert len(reason) > 60 and "device disconnected" in reason
    assert any(reason in e.message for e in app.view.events if e.name == "device.offline")


def test_the_power_emergency_shows_the_cut_cap_and_its_alarm() -> None:
    """What the snapshot must show, said in words (a snapshot alone can be updated wrongly)."""
    app = replay("power-emergency")
    assert app.view.power["cap_w"] == 120
    assert any(e.name == "power.shed" for e in app.view.events)
    assert ("daemon", "power cap") in app.view.alarms
