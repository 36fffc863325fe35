"""The media budget's day: the UTC date, worked out again only when the day number changes."""

from __future__ import annotations

import datetime

from hypothesis import given
from hypothesis import strategies as st

from firmware_host.budget.media import MediaBudget

MIDNIGHTS = st.integers(-10_000, 50_000).map(lambda day: day * 86400.0)
NEAR_MIDNIGHT = st.tuples(MIDNIGHTS, st.sampled_from([-1.0, -1e-4, 0.0, 1e-4, 0.5])).map(sum)
# datetime rounds a reading to the microsecond; within one of midnight the two may differ
AWAY_FROM_ROUNDING = st.floats(-1e9, 4e9).filter(lambda t: abs(t - round(t / 86400) * 86400) > 1e-5)


@given(st.lists(st.one_of(NEAR_MIDNIGHT, AWAY_FROM_ROUNDING), min_size=1, max_size=50))
def test_today_is_the_utc_date_whatever_the_order_of_readings(instants: list[float]) -> None:
    now = [instants[0]]
    budget = MediaBudget(
        take_fit="warn", shoot_days=12, shoot_start=datetime.date(2026, 11, 20),
        clock=lambda: now[0],
    )  # fmt: skip
    for instant in instants:
        now[0] = instant
        assert budget.today() == datetime.datetime.fromtimestamp(instant, datetime.UTC).date()
