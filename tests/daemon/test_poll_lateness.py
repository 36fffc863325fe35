"""Poll lateness: a poll that starts late but inside its period is counted, not invisible;
a late poll runs late, and only whole periods behind are skipped (the grid is kept).

Whole skipped periods are `missed_polls`; a poll held up by a busy event loop for less than a
period used to leave no trace. The agent now records how late each poll started against its
schedule, and the link statistics publish that histogram with its p50/p99.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from firmware_host.config import DeviceConfig
from firmware_host.devices.agent import DeviceAgent
from firmware_host.devices.schedule import poll_after
from firmware_host.events import EventBus
from firmware_host.link.stats import LinkStats
from firmware_host.workflow.timecode import ReferenceClock
from protocols.timecode import FrameRate
from tests.virtual_time import VirtualTimeLoop, run_virtual


class _Light:
    """A driver whose polls answer at once, and mark the link as heard from."""

    def __init__(self, session: SimpleNamespace) -> None:
        self.session = session

    async def poll(self) -> Any:
        self.session.last_rx = asyncio.get_running_loop().time()
        return None


def _agent() -> DeviceAgent:
    config = msgspec.convert(
        {"name": "key", "kind": "light", "port": "/dev/null", "poll_hz": 20}, DeviceConfig
    )
    agent = DeviceAgent(
        config, EventBus(), ReferenceClock(FrameRate.FPS_25, wall=lambda: 0.0), lambda _: None
    )
    session = SimpleNamespace(last_rx=0.0)
    agent.session = session  # type: ignore[assignment]
    agent.driver = _Light(session)  # type: ignore[assignment]
    return agent


async def _poll_for(agent: DeviceAgent, seconds: float, stall_at: float | None) -> None:
    """Run the poll loop; at `stall_at` the loop is held busy for 20 ms (virtual time)."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop)
    polling = asyncio.create_task(agent._poll_loop())
    if stall_at is not None:
        await asyncio.sleep(stall_at)
        loop._jumping.now += 0.020  # as a CPU-bound callback would hold the loop
    await asyncio.sleep(seconds - (stall_at or 0.0))
    polling.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await polling


def test_polls_on_schedule_are_not_late() -> None:
    agent = _agent()
    run_virtual(_poll_for(agent, 1.0, stall_at=None))
    link = agent.stats.as_dict()
    assert sum(agent.stats.poll_late_counts) >= 19  # every poll after the first (at once)
    assert agent.stats.poll_late_counts[0] == sum(agent.stats.poll_late_counts)
    assert link["poll_late_p99_ms"] == 0.5 and link["poll_late_max_ms"] == 0.0
    assert agent.missed_polls == 0


def test_a_poll_held_up_inside_its_period_is_late_but_not_missed() -> None:
    agent = _agent()
    # polls are due every 50 ms; the loop is busy from 40 to 60 ms: the 50 ms poll runs at 60
    run_virtual(_poll_for(agent, 1.0, stall_at=0.040))
    link = agent.stats.as_dict()
    assert agent.missed_polls == 0
    assert link["poll_late_histogram"]["10"] == 1  # 10 ms late: the (5, 10] ms bucket
    assert link["poll_late_max_ms"] == 10.0
    assert link["poll_late_p50_ms"] == 0.5


def test_lateness_percentiles_come_from_the_histogram() -> None:
    stats = LinkStats()
    assert stats.poll_late_percentile_ms(0.99) is None  # nothing polled yet
    for _ in range(98):
        stats.record_poll_lateness(0.0002)
    stats.record_poll_lateness(0.030)
    stats.record_poll_lateness(2.5)  # beyond the last bound: the maximum stands for it
    assert stats.poll_late_percentile_ms(0.5) == 0.5
    assert stats.poll_late_percentile_ms(0.99) == 50.0
    assert stats.poll_late_percentile_ms(1.0) == 2500.0
    stats.record_poll_lateness(-0.001)  # a timer that fired early counts as on time
    assert stats.poll_late_counts[0] == 99


@given(
    due=st.floats(0, 1e6),
    period=st.floats(0.001, 10),
    behind=st.floats(0, 100),  # how long after `due` the poll ended, in periods
)
def test_the_next_poll_stays_on_the_grid_and_never_a_period_late(
    due: float, period: float, behind: float
) -> None:
    now = due + behind * period
    after, skipped = poll_after(due, now, period)
    steps = (after - due) / period
    assert abs(steps - round(steps)) < 1e-6 and round(steps) == skipped + 1
    assert now - after < period * (1 + 1e-9)  # runs at once at worst, less than a period late
    if behind <= 2 - 1e-9:
        assert skipped == 0  # its successor was due, not yet the one after: none skipped


class _SlowLight:
    """A driver whose n-th poll takes `delays[n]` seconds (0 after the list)."""

    def __init__(self, session: SimpleNamespace, delays: list[float]) -> None:
        self.session = session
        self.delays = delays
        self.started: list[float] = []

    async def poll(self) -> Any:
        loop = asyncio.get_running_loop()
        self.started.append(loop.time())
        if self.delays:
            await asyncio.sleep(self.delays.pop(0))
        self.session.last_rx = loop.time()
        return None


async def _run(delays: list[float], seconds: float) -> tuple[DeviceAgent, _SlowLight]:
    agent = _agent()
    driver = _SlowLight(agent.session, delays)  # type: ignore[arg-type]
    agent.driver = driver  # type: ignore[assignment]
    polling = asyncio.create_task(agent._poll_loop())
    await asyncio.sleep(seconds)
    polling.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await polling
    return agent, driver


def test_a_reply_slower_than_the_period_delays_the_next_poll_not_skips_it() -> None:
    agent, driver = run_virtual(_run([0.055], 0.5))
    assert agent.missed_polls == 0
    assert round(driver.started[1], 6) == 0.055  # at once, 5 ms late, not at 105 ms
    assert round(driver.started[2], 6) == 0.100  # and the grid is kept
    assert round(agent.stats.poll_late_max_ms, 6) == 5.0


def test_a_poll_a_whole_period_behind_skips_that_period_and_keeps_the_grid() -> None:
    agent, driver = run_virtual(_run([0.120], 0.5))
    assert agent.missed_polls == 1  # the poll due at 50 ms never ran
    assert round(driver.started[1], 6) == 0.120  # the one due at 100 ms, 20 ms late
    assert round(driver.started[2], 6) == 0.150


class _RecordingLight(_Light):
    def __init__(self, session: SimpleNamespace) -> None:
        super().__init__(session)
        self.polled_at: list[float] = []

    async def poll(self) -> Any:
        self.polled_at.append(asyncio.get_running_loop().time())
        return await super().poll()


async def _two_lights_online_apart(first: DeviceAgent, second: DeviceAgent, apart: float) -> None:
    polling = [asyncio.create_task(first._poll_loop())]
    await asyncio.sleep(apart)
    polling.append(asyncio.create_task(second._poll_loop()))
    await asyncio.sleep(0.5)
    for task in polling:
        task.cancel()
    await asyncio.gather(*polling, return_exceptions=True)


@given(apart=st.floats(0.001, 0.3))
def test_devices_at_one_rate_are_polled_together_whenever_they_came_online(apart: float) -> None:
    agents = [_agent(), _agent()]
    drivers = []
    for agent in agents:
        assert agent.session is not None
        drivers.append(_RecordingLight(agent.session))  # type: ignore[arg-type]
        agent.driver = drivers[-1]  # type: ignore[assignment]
    run_virtual(_two_lights_online_apart(*agents, apart))
    first, second = (d.polled_at for d in drivers)
    assert second[0] - first[0] == apart  # polled at once on coming online
    later = second[1:]  # then on the shared grid, tick for tick with the first
    assert later and all(any(abs(t - u) < 1e-9 for u in first) for t in later)
    assert all(abs(t / 0.05 - round(t / 0.05)) < 1e-6 for t in later)
