"""Shedding takes only what it must: for any loads, priorities and cap, the plan is feasible
where anything is, no step of it could be undone under the target, and no step claims
more than its load can give."""

from __future__ import annotations

import math
import statistics

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_host.budget.governor import (
    CameraSetting,
    FixedSetting,
    LightSetting,
    Load,
    PowerGovernor,
    Setting,
    ShedAction,
)
from firmware_host.budget.models import CameraModel, LightModel, PduModel
from hil.models.base import ManualClock
from protocols.messages.camera import CameraState

EPS = 1e-9


@st.composite
def lights(draw: st.DrawFn, index: int) -> Load:
    max_w = draw(st.floats(10, 200))
    model = LightModel(max_w=max_w, standby_w=draw(st.floats(0.5, 5)), off_w=0.5)
    on = draw(st.booleans())
    setting = LightSetting(on, draw(st.integers(0, 1000)) if on else 0)
    floor = draw(st.sampled_from([0, 0, 100, 333]))
    return Load(f"light-{index}", "light", model, setting, draw(st.integers(0, 60)), floor)


@st.composite
def cameras(draw: st.DrawFn, index: int) -> Load:
    state = draw(st.sampled_from(list(CameraState)))
    priority = draw(st.integers(0, 200))
    return Load(f"cam-{index}", "camera", CameraModel(), CameraSetting(state), priority)


@st.composite
def governors(draw: st.DrawFn) -> PowerGovernor:
    clock = ManualClock(1000.0)
    governor = PowerGovernor(
        draw(st.floats(5, 500)), draw(st.floats(0, 0.3)), clock=clock.now,
        stop_cameras=draw(st.booleans()),
    )  # fmt: skip
    for i in range(draw(st.integers(0, 5))):
        governor.add(draw(lights(i)))
    for i in range(draw(st.integers(0, 3))):
        governor.add(draw(cameras(i)))
    governor.add(Load("pdu", "pdu", PduModel(), FixedSetting(), 1000))
    for name, load in governor.loads.items():  # the PDU reads some loads off their model
        factor = draw(st.none() | st.floats(0.5, 1.5))
        if factor is not None:
            governor.measure(name, load.model_w() * factor)
    return governor


def planned_total(governor: PowerGovernor, settings_: dict[str, Setting]) -> float:
    """The total the plan expects: a changed load at its model, never above what it draws."""
    total = 0.0
    for name, load in governor.loads.items():
        now_w = governor.draw(name)[0]
        new = settings_.get(name)
        total += now_w if new is None else min(now_w, load.model_w(new))
    return total


def applied(plan: list[ShedAction]) -> dict[str, Setting]:
    return {action.load: action.setting for action in plan}


def lowest_total(governor: PowerGovernor) -> float:
    """Every load at the bottom of its ladder (a load with nowhere to go stays as it is)."""
    ladders = {name: governor.ladder(load) for name, load in governor.loads.items()}
    return planned_total(governor, {n: ld[-1] for n, ld in ladders.items() if len(ld) > 1})


@settings(max_examples=400)
@given(governors())
def test_the_plan_is_feasible_whenever_anything_is(governor: PowerGovernor) -> None:
    snap = governor.snapshot()
    plan = governor.shed_plan()
    if snap.total_w <= governor.cap_w:
        assert plan == []
        return
    target = governor.target_w(snap)
    total = planned_total(governor, applied(plan))
    if lowest_total(governor) <= target:
        assert total <= target + EPS, f"{total:.2f} W planned against a {target:.2f} W target"
    else:  # nothing fits: everything that may be shed is shed
        assert abs(total - lowest_total(governor)) < 1e-6


@settings(max_examples=400)
@given(governors())
def test_no_step_of_the_plan_could_be_undone_under_the_target(governor: PowerGovernor) -> None:
    snap = governor.snapshot()
    plan = governor.shed_plan()
    target = governor.target_w(snap)
    chosen = applied(plan)
    for action in plan:
        load = governor.loads[action.load]
        ladder = governor.ladder(load)
        rung = ladder.index(action.setting)
        assert rung > 0, f"{action.reason} changes nothing"
        one_back = {**chosen, action.load: ladder[rung - 1]}
        if rung - 1 == 0:
            del one_back[action.load]
        assert planned_total(governor, one_back) > target - EPS, (
            f"{action.reason}: one step of it could be given back and stay under {target:.1f} W"
        )


@settings(max_examples=400)
@given(governors())
def test_no_step_claims_more_than_its_load_can_give(governor: PowerGovernor) -> None:
    plan = governor.shed_plan()
    assert len({a.load for a in plan}) == len(plan), "one action per load"
    for action in plan:
        load = governor.loads[action.load]
        now_w = governor.draw(action.load)[0]
        lowest = min(now_w, load.model_w(governor.ladder(load)[-1]))
        assert 0 <= action.saving_w <= now_w - lowest + EPS, action.reason


def test_a_light_at_0_pct_saves_only_its_idle_draw() -> None:
    governor = PowerGovernor(20.0, 0.1, clock=ManualClock(0.0).now)
    governor.add(Load("key", "light", LightModel(), LightSetting(True, 0), 30))
    governor.add(Load("cam", "camera", CameraModel(), CameraSetting(CameraState.RECORDING)))
    [action] = governor.shed_plan()  # 3 + 23.6 W against 20 W: off is all the key can give
    assert action.setting == LightSetting(False, 0)
    assert action.saving_w == LightModel().standby_w - LightModel().off_w


def power_emergency() -> PowerGovernor:
    """The power-emergency report: 300 -> 120 W with key 100 %, fill 90 %, two takes rolling."""
    governor = PowerGovernor(120.0, 0.1, clock=ManualClock(0.0).now)
    governor.add(Load("key", "light", LightModel(), LightSetting(True, 1000), 30))
    governor.add(Load("fill", "light", LightModel(), LightSetting(True, 900), 10))
    for name in ("cam-a", "cam-b"):
        governor.add(Load(name, "camera", CameraModel(), CameraSetting(CameraState.RECORDING)))
    governor.add(Load("pdu", "pdu", PduModel(), FixedSetting(), 1000))
    return governor


def test_the_power_emergency_dims_fill_then_key_and_no_further() -> None:
    governor = power_emergency()
    plan = governor.shed_plan()
    assert [(a.load, a.setting) for a in plan] == [
        ("fill", LightSetting(True, 0)), ("key", LightSetting(True, 650))
    ]  # fmt: skip
    total = planned_total(governor, applied(plan))
    step = governor.step_w(governor.loads["key"])
    assert 108 - step <= total <= 108


def test_a_reading_requested_before_a_change_does_not_undo_it() -> None:
    clock = ManualClock(0.0)
    governor = power_emergency()
    governor.clock = clock.now
    for name, load in governor.loads.items():
        governor.measure(name, load.model_w())
    requested = clock.now()  # the PDU is asked for a reading...
    clock.advance(0.01)
    for action in governor.shed_plan():  # ...the lights dim meanwhile...
        governor.shed(action)
    clock.advance(0.01)
    governor.measure("key", 100.0, requested)  # ...and the old reading arrives
    governor.measure("fill", 85.9, requested)
    assert governor.snapshot().total_w <= 108
    assert governor.shed_plan() == []


def test_shed_lights_come_back_in_priority_order_when_the_cap_rises() -> None:
    governor = power_emergency()
    for action in governor.shed_plan():
        governor.shed(action)
    governor.set_cap(300.0)
    back = []
    while (step := governor.restore_step()) is not None:
        governor.restored(step)
        back.append((step.load, step.setting))
    assert back == [("key", LightSetting(True, 1000)), ("fill", LightSetting(True, 900))]
    assert governor.wanted == {}


def test_a_light_the_crew_sets_is_no_longer_restored() -> None:
    governor = power_emergency()
    for action in governor.shed_plan():
        governor.shed(action)
    governor.commanded("key")
    governor.observe("key", LightSetting(True, 200))
    governor.set_cap(300.0)
    step = governor.restore_step()
    assert step is not None and step.load == "fill"


@given(st.lists(st.floats(0, 2000), max_size=25))
def test_a_loads_measured_mean_and_its_variance_are_the_exact_ones_to_float_precision(
    readings: list[float],
) -> None:
    load = Load("light", "light", LightModel(max_w=2000), LightSetting(True, 1000))
    load.readings.extend(readings)  # the last READINGS_AVERAGED of them are kept
    kept = list(load.readings)
    if not kept:
        assert load.measured_w is None and load.measured_variance == 0.0
        return
    assert math.isclose(load.measured_w or 0.0, statistics.fmean(kept), rel_tol=1e-12)
    exact = statistics.variance(kept) / len(kept) if len(kept) > 1 else 0.0
    assert math.isclose(load.measured_variance, exact, rel_tol=1e-9, abs_tol=1e-12)
