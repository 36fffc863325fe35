"""`make demo`: the nominal scenario under the live monitor, end to end, headless."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.demo import run_demo

pytestmark = pytest.mark.long

SHORT_DAY = Path(__file__).parent / "scenarios" / "short-day.toml"


def test_the_demo_plays_the_nominal_scenario_under_the_monitor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shot = tmp_path / "monitor.svg"
    assert run_demo("nominal", screenshot=shot) == 0
    out = capsys.readouterr().out
    assert "8 passed, 0 failed" in out
    assert "shot log: 2 takes today" in out  # the monitor's own account, not the bench's
    svg = shot.read_text()
    assert "recording" in svg and "12A/2" in svg  # drawn while the second take rolled


def test_without_a_terminal_the_demo_prints_the_monitor_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_demo(str(SHORT_DAY), ui=False) == 0
    out = capsys.readouterr().out
    assert "3 passed, 0 failed" in out
    assert "The monitor as the scenario ended" in out
    assert "scene 12A take 1 (circled)" in out
    assert "ONLINE" in out.split("The monitor as the scenario ended", 1)[1]
