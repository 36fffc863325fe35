"""`cupola plan`: budgets per day from a schedule, the first violation named."""

from __future__ import annotations

import datetime
import itertools
import subprocess
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from tests.harness import cupola
from tools.plan import (
    Budget,
    CameraPlan,
    LightPlan,
    Plan,
    Setup,
    Shoot,
    evaluate,
    figure,
    load_plan,
    run,
)

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


def drawn(name: str) -> Figure:
    plan = load_plan(PLANS / name)
    fig = figure(plan, evaluate(plan))
    FigureCanvasAgg(fig).draw()  # lay out and render, as savefig does, so extents are final
    return fig


def line(fig: Figure, label: str) -> Line2D:
    (found,) = [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_label() == label]
    return found


def test_the_cap_changes_in_steps_between_days_never_a_diagonal() -> None:
    cap = line(drawn("twelve-days-infeasible.toml"), "cap less reserve (W)")
    assert cap.get_drawstyle() == "default"  # the points themselves are the steps
    points = cap.get_xydata()
    segments = list(itertools.pairwise(points))
    assert segments and all(a[0] == b[0] or a[1] == b[1] for a, b in segments)
    # each day is one level across its whole bar: day 4 sits at the cut's 108 W, day 3 does not
    levels = {(a[0] + b[0]) / 2: a[1] for a, b in segments if a[1] == b[1]}
    assert round(levels[4.0]) == 108 and round(levels[3.0]) == 270
    assert min(points[:, 0]) == 0.5 and max(points[:, 0]) == 12.5


def test_cameras_recording_alike_are_both_seen_and_both_in_the_legend() -> None:
    fig = drawn("twelve-days.toml")
    cam_a, cam_b = line(fig, "cam-a"), line(fig, "cam-b")
    assert (cam_a.get_xydata() == cam_b.get_xydata()).all()  # the case the plot must show
    style = [(ln.get_marker(), ln.get_linestyle(), ln.get_markersize()) for ln in (cam_a, cam_b)]
    assert style[0] != style[1]
    assert cam_b.get_markersize() < cam_a.get_markersize()  # drawn later, so drawn smaller
    assert cam_a.get_markerfacecolor() == "none"  # and the one beneath is hollow
    legend = cam_a.axes.get_legend()
    assert {t.get_text() for t in legend.get_texts()} >= {"cam-a", "cam-b"}


@pytest.mark.parametrize("name", ["twelve-days.toml", "twelve-days-infeasible.toml"])
def test_no_legend_covers_the_data(name: str) -> None:
    fig = drawn(name)
    assert isinstance(fig.canvas, FigureCanvasAgg)
    renderer = fig.canvas.get_renderer()
    cap = line(fig, "cap less reserve (W)")
    on_screen = cap.get_transform().transform(cap.get_xydata())
    for ax in fig.axes:
        assert isinstance(ax, Axes)
        legend = ax.get_legend()
        box = legend.get_window_extent(renderer)
        assert not box.overlaps(ax.get_window_extent(renderer)), ax.get_ylabel()
        assert not any(box.contains(x, y) for x, y in on_screen)
        assert box.x1 <= fig.bbox.x1 and box.y0 >= fig.bbox.y0  # and is not cut off


def test_every_violation_is_listed_with_all(capsys: pytest.CaptureFixture[str]) -> None:
    plan = PLANS / "twelve-days-infeasible.toml"
    assert run(plan, None) == 1
    short = capsys.readouterr().out
    assert "(and 9 more violations; --all lists them)" in short
    assert run(plan, None, every=True) == 1
    full = capsys.readouterr().out.split("INFEASIBLE: ")[1].splitlines()
    assert full[0] == "10 violations:"
    assert full[1].startswith("  day 4 10:30 scene 10: peak 250 W exceeds")
    assert len(full) == 11 and full[-1].startswith("  day 12: cam-b media still over")


def test_counts_are_plural_only_when_not_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = one_day({"key": 100}, 120, 120, gb=0.5)  # one day, one violation: the downlink
    path = tmp_path / "plan.toml"
    path.write_bytes(msgspec.toml.encode(plan))
    assert run(path, None) == 1
    text = capsys.readouterr().out
    assert "t: 1 day from 2026-11-25" in text and "1 days" not in text
    assert "INFEASIBLE: day 1: downlink" in text and "more" not in text
    assert run(path, None, every=True) == 1
    assert "INFEASIBLE: 1 violation:\n  day 1: downlink" in capsys.readouterr().out
    plan.shoot.days = 2
    plan.setups.append(msgspec.structs.replace(plan.setups[0], day=2))
    path.write_bytes(msgspec.toml.encode(plan))
    assert run(path, None) == 1
    text = capsys.readouterr().out
    assert "t: 2 days from" in text and "(and 1 more violation; --all lists them)" in text


def test_a_day_without_setups_is_held_to_the_standing_cap_less_reserve() -> None:
    plan = one_day({"key": 50}, 10, 0)
    plan.shoot.days = 2
    _, rest_day = evaluate(plan)
    assert rest_day.setups == 0 and rest_day.limit_w == 300 * 0.9  # not 0, not the raw cap
