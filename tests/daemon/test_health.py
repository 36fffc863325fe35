"""Limits raise one event per crossing; the supervisor restarts what crashes or hangs."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_host.config import LimitsConfig, parse_config
from firmware_host.daemon import Daemon
from firmware_host.events import Event, EventBus
from firmware_host.health.limits import Level, LimitMonitor, default_limits
from firmware_host.link.stats import LinkStats
from firmware_host.supervisor import Supervisor
from tests.harness import Credentials


@dataclass
class FakeCameraStatus:
    temperature_cdeg: int
    media_used_bytes: int = 0
    media_free_bytes: int = 100


def monitor() -> tuple[LimitMonitor, list[Event]]:
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe(events.append)
    return LimitMonitor(bus, default_limits(LimitsConfig()), 0.05), events


@given(readings=st.lists(st.floats(20, 90), max_size=200))
def test_each_level_change_is_one_event_and_nothing_else_is(readings: list[float]) -> None:
    limits, events = monitor()
    changes = 0
    previous = Level.OK
    for reading in readings:
        limits.check("cam-a", "camera", FakeCameraStatus(round(reading * 100)), LinkStats())
        level = limits.levels.get(("cam-a", "camera.temperature"), Level.OK)
        changes += level is not previous
        previous = level
    assert len(events) == changes
    for event in events:
        assert event.name.startswith("limit.camera.temperature.")


@given(jitter=st.lists(st.floats(-0.3, 0.3), min_size=50, max_size=200))
def test_a_reading_hovering_at_a_threshold_does_not_flap(jitter: list[float]) -> None:
    limits, events = monitor()
    for delta in [0.5, *jitter]:  # just above yellow (60 C), then noise within the band
        limits.check("cam-a", "camera", FakeCameraStatus(round((60 + delta) * 100)), LinkStats())
    assert [e.name for e in events] == ["limit.camera.temperature.yellow"]


def test_low_limits_and_their_messages() -> None:
    limits, events = monitor()
    for free in (50, 15, 4, 30):
        status = FakeCameraStatus(3000, media_used_bytes=100 - free, media_free_bytes=free)
        limits.check("cam-a", "camera", status, LinkStats())
    assert [e.name for e in events] == [
        "limit.camera.media_free.yellow",
        "limit.camera.media_free.red",
        "limit.camera.media_free.cleared",
    ]
    assert "below its red limit 5%" in events[1].message


async def test_a_crashed_task_is_restarted_and_reported() -> None:
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe(events.append)
    supervisor = Supervisor(bus, min_backoff_s=0.01)
    runs = 0

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise RuntimeError("boom")
        await asyncio.sleep(60)

    supervisor.add("flaky", flaky)
    stop = asyncio.Event()
    runner = asyncio.create_task(supervisor.run(stop))
    await asyncio.sleep(0.3)
    stop.set()
    await runner
    assert runs == 3
    assert [e.name for e in events] == ["task.restarted", "task.restarted"]
    assert "RuntimeError('boom')" in events[0].message


async def test_a_hung_task_is_cancelled_and_restarted() -> None:
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe(events.append)
    supervisor = Supervisor(bus, min_backoff_s=0.01)
    runs = 0

    async def stalls() -> None:
        nonlocal runs
        runs += 1
        supervisor.beat("stalls")
        await asyncio.Event().wait()  # never beats again

    supervisor.add("stalls", stalls, watchdog_s=0.5)
    stop = asyncio.Event()
    runner = asyncio.create_task(supervisor.run(stop))
    await asyncio.sleep(1.4)
    stop.set()
    await runner
    assert runs == 2
    assert events and "hung" in events[0].message and events[0].data["reason"] == "hung"


async def test_the_daemon_tells_systemd_it_is_ready_alive_and_stopping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(path))
    listener.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    keys = Credentials(tmp_path)
    config = parse_config(
        f'[node]\nstate_dir = "{tmp_path}"\n[mqtt]\nurl = "mqtt://127.0.0.1:1"\n'
        f'[auth]\nkeyring = "{keys.keyring}"\n'
        '[[device]]\nname = "cam-a"\nkind = "camera"\nport = "/nonexistent/cam-a"\n'
    )  # a config needs a device; this one stays offline, which health does not mind
    stop = asyncio.Event()
    runner = asyncio.create_task(Daemon(config).run(stop))
    await asyncio.sleep(1.3)
    stop.set()
    await runner
    messages = []
    with contextlib.suppress(BlockingIOError):
        while True:
            messages.append(listener.recv(4096).decode())
    listener.close()
    assert messages[0].startswith("READY=1")
    assert messages.count("WATCHDOG=1") >= 2
    assert messages[-1] == "STOPPING=1"
