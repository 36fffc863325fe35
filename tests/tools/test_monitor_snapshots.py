"""The main screen, pinned as SVG: a nominal take and a station power emergency.

The screens replay captures recorded from the scenario library (tests/tools/captures,
`python -m tests.tools.record_capture`), with the clock stopped at the capture's last
message, so every run draws the same screen. After a deliberate change to the screen:
`pytest tests/tools/test_monitor_snapshots.py --snapshot-update`, and look at the SVGs.
"""

from __future__ import annotations

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
    return MonitorApp(view, clock=lambda: last, subtitle=f"replay: {name}")


@pytest.mark.parametrize("capture", ["nominal", "power-emergency"])
def test_main_screen(capture: str, snap_compare: Callable[..., bool]) -> None:
    assert snap_compare(replay(capture), terminal_size=SIZE)


def test_the_power_emergency_shows_the_cut_cap_and_its_alarm() -> None:
    """What the snapshot must show, said in words (a snapshot alone can be updated wrongly)."""
    app = replay("power-emergency")
    assert app.view.power["cap_w"] == 120
    assert any(e.name == "power.shed" for e in app.view.events)
    assert ("daemon", "power cap") in app.view.alarms
