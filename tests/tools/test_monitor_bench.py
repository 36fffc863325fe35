"""The monitor's benchmark still runs (a figure nobody can reproduce is worth nothing)."""

from __future__ import annotations

from bench.monitor import _captured, absorb_rates, redraw_ms


async def test_the_redraw_benchmark_runs_on_a_full_event_log() -> None:
    p50, worst, paused, idle = await redraw_ms(devices=8, repeats=2)
    assert 0 < p50 <= worst and idle > 0
    assert p50 <= paused  # the frame is out before the screen is idle again


def test_the_absorb_benchmark_feeds_no_duplicates() -> None:
    result = absorb_rates(rounds=3)
    assert result["messages"] == 3 * len(_captured())
    assert result["duplicates"] == 0 and result["malformed"] == 0
    assert result["rate"] > 0 and result["floor"] > 0
