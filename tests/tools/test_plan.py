"""`cupola plan`: budgets per day from a schedule, the first violation named."""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tests.harness import cupola
from tools.plan import Budget, CameraPlan, LightPlan, Plan, Setup, Shoot, evaluate

PLANS = Path(__file__).resolve().parents[2] / "tools" / "plans"


def test_the_example_plan_is_feasible(tmp_path: Path) -> None:
    plot = tmp_path / "plan.png"
    result = subprocess.run(
        cupola("plan", str(PLANS / "twelve-days.toml"), "--plot", str(plot)),
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "feasible: every day fits" in result.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_infeasible_plan_names_its_first_violation() -> None:
    result = subprocess.run(
        cupola("plan", str(PLANS / "twelve-days-infeasible.toml")), capture_output=True, text=True
    )
    assert result.returncode == 1
    assert (
        "INFEASIBLE: day 4 10:30 scene 10: peak 250 W exceeds the 108 W limit (120 W cap during "
        "'station power-down for a docking' less 10 % reserve) by 142 W"
    ) in result.stdout


def test_a_plan_that_names_unknown_gear_is_refused(tmp_path: Path) -> None:
    text = (PLANS / "twelve-days.toml").read_text().replace('cameras = ["cam-a", "cam-b"]',
                                                            'cameras = ["cam-z"]', 1)  # fmt: skip
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = subprocess.run(cupola("plan", str(path)), capture_output=True, text=True)
    assert result.returncode == 65 and "camera 'cam-z' is not in the plan" in result.stderr


def one_day(levels: dict[str, float], record: float, circled: float, gb: float = 5.0) -> Plan:
    return Plan(
        shoot=Shoot(name="t", days=1, start=datetime.date(2026, 11, 25)),
        budget=Budget(downlink_gb_per_day=gb),
        cameras=[CameraPlan(name="cam-a")],
        lights=[LightPlan(name=n) for n in levels],
        setups=[
            Setup(
                day=1,
                start="09:00",
                minutes=120,
                scene="1",
                cameras=["cam-a"],
                lights=levels,
                record_minutes=record,
                circled_minutes=circled,
            )
        ],
    )


@given(
    low=st.floats(0, 100), high=st.floats(0, 100), record=st.floats(0, 120),
)  # fmt: skip
def test_more_light_never_lowers_the_peak_or_the_energy(
    low: float, high: float, record: float
) -> None:
    low, high = sorted((low, high))
    (dim,) = evaluate(one_day({"key": low}, record, 0))
    (bright,) = evaluate(one_day({"key": high}, record, 0))
    assert bright.peak_w >= dim.peak_w and bright.energy_wh >= dim.energy_wh
    assert dim.energy_wh >= 5.0 * 22  # never below the idle baseline outside the setup


@given(circled=st.floats(0, 120), gb=st.floats(0.1, 10))
def test_downlink_over_the_allocation_is_a_violation(circled: float, gb: float) -> None:
    (day,) = evaluate(one_day({"key": 50}, 10, circled, gb))
    over = day.downlink_bytes > gb * 1e9
    assert over == any("downlink" in v for v in day.violations)
