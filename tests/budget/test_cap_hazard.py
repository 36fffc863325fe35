"""One hazard rule for every way of changing the cap: whatever would put a higher cap in
force at any moment, now or later in the timeline, must be confirmed; lowering never waits."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from firmware_host.budget.power import CapArgs, PowerManager
from firmware_host.commands.dispatcher import CommandRejected
from firmware_host.config import parse_config
from firmware_host.events import EventBus
from hil.models.base import ManualClock

NOW = 1_790_000_000.0  # wall time, seconds


def manager(wall: ManualClock, cap_w: float = 300) -> PowerManager:
    config = parse_config(f'[mqtt]\nurl = "mqtt://127.0.0.1:1"\n[power]\ncap_w = {cap_w}\n')
    return PowerManager(config, {}, EventBus(), clock=wall.now, wall=wall.now)


def hazardous(power: PowerManager, name: str, args: dict[str, Any]) -> bool:
    spec = next(spec for spec in power.commands() if spec.name == name)
    return spec.hazardous_for(args)


async def run(power: PowerManager, name: str, args: dict[str, Any]) -> dict[str, Any]:
    spec = next(spec for spec in power.commands() if spec.name == name)
    return await spec.run(msgspec.convert(args, spec.args))


@pytest.fixture
def wall() -> ManualClock:
    return ManualClock(NOW)


async def test_a_timeline_change_at_now_that_raises_the_cap_is_hazardous(
    wall: ManualClock,
) -> None:
    power = manager(wall)
    assert hazardous(power, "power.timeline.add", {"at": NOW, "cap_w": 5000})


async def test_a_cap_set_during_a_window_that_raises_the_cap_after_it_is_hazardous(
    wall: ManualClock,
) -> None:
    power = manager(wall)
    await run(power, "power.timeline.add", {"at": NOW, "cap_w": 400, "until": NOW + 600})
    assert power.governor.cap_w == 400
    # 350 W is under the 400 W in force now, but after the window 350 W replaces 300 W
    assert hazardous(power, "power.cap.set", {"cap_w": 350})
    assert power.raises_cap(*power._after_cap_set(CapArgs(cap_w=350))) == (
        "raises the cap in force in 595 s from 300 W to 350 W"  # the window ends a lead early
    )


async def test_a_cap_set_during_a_window_that_lowers_it_throughout_is_immediate(
    wall: ManualClock,
) -> None:
    power = manager(wall)
    await run(power, "power.timeline.add", {"at": NOW, "cap_w": 400, "until": NOW + 600})
    assert not hazardous(power, "power.cap.set", {"cap_w": 250})
    await run(power, "power.cap.set", {"cap_w": 250})
    assert power.governor.cap_w == 250
    wall.advance(700)
    power._apply_timeline()
    assert power.governor.cap_w == 250 and power.base_cap_w == 250


async def test_lowering_now_or_planning_a_cut_is_immediate(wall: ManualClock) -> None:
    power = manager(wall)
    assert not hazardous(power, "power.cap.set", {"cap_w": 120})
    assert not hazardous(power, "power.timeline.add", {"at": NOW, "cap_w": 120})
    assert not hazardous(
        power, "power.timeline.add", {"at": NOW + 60, "cap_w": 90, "until": NOW + 120}
    )
    await run(power, "power.timeline.add", {"at": NOW, "cap_w": 120})
    assert power.governor.cap_w == 120 and power.base_cap_w == 120


async def test_a_planned_raise_later_is_hazardous_too(wall: ManualClock) -> None:
    power = manager(wall)
    assert hazardous(power, "power.timeline.add", {"at": NOW + 3600, "cap_w": 400})
    assert hazardous(power, "power.cap.set", {"cap_w": 301})
    assert not hazardous(power, "power.cap.set", {"cap_w": 300})


async def test_clearing_a_planned_cut_is_hazardous_and_clearing_a_raise_is_not(
    wall: ManualClock,
) -> None:
    power = manager(wall)
    await run(power, "power.timeline.add", {"at": NOW + 60, "cap_w": 90, "until": NOW + 120})
    assert hazardous(power, "power.timeline.clear", {})
    cleared = manager(ManualClock(NOW))
    assert not hazardous(cleared, "power.timeline.clear", {})


async def test_arguments_the_handler_refuses_are_not_judged_hazardous(wall: ManualClock) -> None:
    power = manager(wall)
    assert not hazardous(power, "power.timeline.add", {"at": NOW, "cap_w": "lots"})
    bad = {"at": NOW + 10, "cap_w": 500, "until": NOW}
    assert not hazardous(power, "power.timeline.add", bad)
    with pytest.raises(CommandRejected, match="must be after"):
        await run(power, "power.timeline.add", bad)
    far = {"at": 1e300, "cap_w": 500}
    assert not hazardous(power, "power.timeline.add", far)
    with pytest.raises(CommandRejected, match="not a time this node can plan for"):
        await run(power, "power.timeline.add", far)


async def test_a_planned_cut_is_applied_a_lead_early_and_lifted_on_time(
    wall: ManualClock,
) -> None:
    power = manager(wall)
    lead = power.config.cap_lead_s
    await run(power, "power.timeline.add", {"at": NOW + 60, "cap_w": 90, "until": NOW + 120})
    wall.advance(60 - lead - 0.1)
    power._apply_timeline()
    assert power.governor.cap_w == 300
    wall.advance(0.2)
    power._apply_timeline()
    assert power.governor.cap_w == 90
    wall.advance(NOW + 120 - 0.1 - wall.now())
    power._apply_timeline()
    assert power.governor.cap_w == 90 and power.timeline
    wall.advance(0.2)
    power._apply_timeline()
    assert power.governor.cap_w == 300 and not power.timeline
