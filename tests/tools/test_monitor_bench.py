"""The monitor's benchmark still runs (a figure nobody can reproduce is worth nothing)."""

from __future__ import annotations

from bench.monitor import redraw_ms


async def test_the_redraw_benchmark_runs_on_a_full_event_log() -> None:
    p50, worst = await redraw_ms(devices=8, repeats=2)
    assert 0 < p50 <= worst
