"""Link classes: housekeeping has its own allocation, held only when the segment says so."""

from __future__ import annotations

import datetime

from firmware_host.budget.data import DataBudgets
from firmware_host.budget.downlink import (
    BUDGET_EXHAUSTED,
    CONTACT_SCHEDULE,
    ContactWindow,
    DownlinkBudget,
    Hold,
)
from firmware_host.config import ContactConfig, DataConfig, HousekeepingConfig
from firmware_host.events import EventBus
from firmware_host.groundlink.pacing import Pacer

MIDNIGHT = datetime.datetime(2026, 11, 24, tzinfo=datetime.UTC).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def budget(clock: Clock, *, windowed: bool, per_day: float | None = None) -> DownlinkBudget:
    return DownlinkBudget(
        bytes_per_day=5e9,
        windows=[ContactWindow(10 * 3600, 900), ContactWindow(16 * 3600, 600)],
        link_bytes_per_s=2.5e6,
        proxy_kbps=10_000,
        housekeeping_bytes_per_s=500.0,
        housekeeping_bytes_per_day=per_day,
        housekeeping_windowed=windowed,
        clock=clock,
    )


def test_windowed_housekeeping_is_held_outside_a_window_until_the_next_one() -> None:
    clock = Clock(MIDNIGHT + 12 * 3600)
    downlink = budget(clock, windowed=True)
    assert downlink.housekeeping_hold() == Hold(CONTACT_SCHEDULE, MIDNIGHT + 16 * 3600)
    assert downlink.housekeeping_rate() == 0.0
    clock.now = MIDNIGHT + 16 * 3600 + 1
    assert downlink.housekeeping_hold() is None
    assert downlink.housekeeping_rate() == 500.0
    clock.now = MIDNIGHT + 20 * 3600  # after the day's last window: tomorrow's first
    assert downlink.housekeeping_hold() == Hold(CONTACT_SCHEDULE, MIDNIGHT + 86400 + 10 * 3600)


def test_the_hold_is_announced_ahead_of_the_windows_end() -> None:
    clock = Clock(MIDNIGHT + 10 * 3600 + 899)  # one second of window left
    downlink = budget(clock, windowed=True)
    assert downlink.housekeeping_hold() is None
    assert downlink.housekeeping_hold(lead_s=2) == Hold(CONTACT_SCHEDULE, MIDNIGHT + 16 * 3600)


def test_continuous_housekeeping_flows_outside_windows_and_after_bulk_is_spent() -> None:
    clock = Clock(MIDNIGHT + 12 * 3600)
    downlink = budget(clock, windowed=False)
    downlink.proxies_today = 5e9  # bulk spent: it used to stop the stream with it
    assert downlink.rate() == 0.0
    assert downlink.housekeeping_hold() is None
    assert downlink.housekeeping_rate() == 500.0


def test_a_spent_housekeeping_day_holds_until_midnight() -> None:
    clock = Clock(MIDNIGHT + 10 * 3600 + 60)
    downlink = budget(clock, windowed=True, per_day=1e6)
    downlink.tick(999_999)
    assert downlink.housekeeping_hold() is None
    downlink.tick(1)
    assert downlink.housekeeping_hold() == Hold(BUDGET_EXHAUSTED, MIDNIGHT + 86400)


def test_housekeeping_spending_is_not_taken_from_the_bulk_allocation() -> None:
    clock = Clock(MIDNIGHT + 10 * 3600 + 60)
    downlink = budget(clock, windowed=True)
    downlink.tick(1_000_000)
    assert downlink.used_today() == 0.0
    assert downlink.status()["telemetry_mb"] == 1.0


def test_a_window_across_midnight_contains_both_sides() -> None:
    window = ContactWindow(86400 - 300, 600)
    assert window.contains(86400 - 1) and window.contains(100) and not window.contains(400)


def test_the_ground_link_hears_of_a_hold_before_the_stream_stops() -> None:
    clock = Clock(MIDNIGHT + 12 * 3600)
    config = DataConfig(
        contact=[ContactConfig("10:00", 15), ContactConfig("16:00:30", 10)],
        housekeeping=HousekeepingConfig(kbps=4.0, windowed=True),
    )
    pacer = Pacer(None)
    seen: list[tuple[Hold | None, float | None]] = []
    DataBudgets(
        config, EventBus(), pacer, clock=clock, on_hold=lambda h: seen.append((h, pacer.rate))
    )
    assert seen == [(Hold(CONTACT_SCHEDULE, MIDNIGHT + 16 * 3600 + 30), None)]
    assert pacer.rate == 0.0  # held from the start: not unpaced until the first tick
