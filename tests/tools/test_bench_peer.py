"""The daemon headline's peer, the bare link layer, polls as the daemon's agent does: on the same
shared grid, a late poll run at once, only whole skipped periods counted as missed, and with
the link settings a device gets by default. A peer on its own schedule pays for polls at
scattered phases (2.7x the CPU per poll, BENCHMARKS.md's sixth pass) and counts missed polls
differently, and the ratio against it would say nothing about the daemon."""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import daemon_scale, sim_scale
from bench.rig import Rig
from firmware_host.config import DeviceConfig, MqttConfig
from firmware_host.devices.agent import DeviceAgent
from firmware_host.events import EventBus
from firmware_host.workflow.timecode import ReferenceClock
from protocols.timecode import FrameRate
from tests.virtual_time import run_virtual

HZ = 20.0
PERIOD = 1.0 / HZ


class _Done(Exception):
    """A poll due at the end of the run: the agent's loop stops there, as the peer's does."""


class _Replies:
    """Answers each poll after the next of `durations` (virtual seconds), noting when it was
    asked; the last duration repeats. A poll due at `until` or later ends the polling, as the
    peer's own loop ends there."""

    def __init__(self, durations: list[float], until: float) -> None:
        self.durations = durations
        self.until = until
        self.asked: list[float] = []
        self.last_rx = 0.0

    async def answer(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() >= self.until:
            raise _Done
        self.asked.append(loop.time())
        await asyncio.sleep(self.durations[min(len(self.asked), len(self.durations)) - 1])
        self.last_rx = loop.time()


class _Driver:
    def __init__(self, replies: _Replies) -> None:
        self.replies = replies

    async def poll(self) -> Any:
        await self.replies.answer()
        return None


Polled = tuple[list[float], int]  # when each poll was asked, and the whole periods missed


async def _agent_polls(start: float, until: float, durations: list[float]) -> Polled:
    await asyncio.sleep(start)
    polling = {"poll_hz": HZ, "offline_after_s": 600}
    config = msgspec.convert(
        {"name": "key", "kind": "light", "port": "/dev/null", **polling}, DeviceConfig
    )
    agent = DeviceAgent(
        config, EventBus(), ReferenceClock(FrameRate.FPS_25, wall=lambda: 0.0), lambda _: None
    )
    replies = _Replies(durations, until)
    agent.session = replies  # type: ignore[assignment]
    agent.driver = _Driver(replies)  # type: ignore[assignment]
    with contextlib.suppress(_Done):
        await agent._poll_loop()
    return replies.asked, agent.missed_polls


async def _peer_polls(start: float, until: float, durations: list[float]) -> Polled:
    await asyncio.sleep(start)
    replies = _Replies(durations, until)

    async def call(command: Any, body: Any) -> None:
        await replies.answer()

    link = SimpleNamespace(session=SimpleNamespace(call=call))
    missed = await sim_scale._poll(link, "light", HZ, until, [])  # type: ignore[arg-type]
    return replies.asked, missed


@settings(max_examples=60, deadline=None)
@given(
    start=st.floats(0.0, 1.0),
    durations=st.lists(st.floats(0.001, 3.5 * PERIOD), min_size=1, max_size=30),
)
def test_the_peer_polls_when_the_agent_polls_and_misses_what_it_misses(
    start: float, durations: list[float]
) -> None:
    until = start + 2.0
    agent_asked, agent_missed = run_virtual(_agent_polls(start, until, durations))
    peer_asked, peer_missed = run_virtual(_peer_polls(start, until, durations))
    assert peer_asked == agent_asked
    assert peer_missed == agent_missed


def test_the_benches_run_the_product_at_its_defaults_or_say_where_they_do_not() -> None:
    """The settings a device or a ground link gets when its config names none, as the benches
    use them; the headline's 20 Hz is the one stated deviation (issue 18's 50 ms period)."""
    device = msgspec.convert({"name": "d", "kind": "light", "port": "/dev/null"}, DeviceConfig)
    assert device.baud == daemon_scale.BAUD
    assert daemon_scale.DEFAULT_POLL_HZ == device.poll_hz != daemon_scale.POLL_HZ
    assert sim_scale.DEVICE_DEFAULTS["timeout_ms"] == device.timeout_ms
    assert sim_scale.DEVICE_DEFAULTS["retries"] == device.retries
    rig_default = Rig.start_daemon.__defaults__
    assert rig_default is not None and MqttConfig().state_rate_hz in rig_default
