"""Poll lateness: a poll that starts late but inside its period is counted, not invisible.

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

from firmware_host.config import DeviceConfig
from firmware_host.devices.agent import DeviceAgent
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
    agent.session = SimpleNamespace(last_rx=0.0)  # type: ignore[assignment]
    agent.driver = _Light(agent.session)  # type: ignore[assignment]
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
    assert sum(agent.stats.poll_late_counts) >= 20
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
