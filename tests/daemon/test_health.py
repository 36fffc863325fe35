"""Limits raise one event per crossing; the supervisor restarts what crashes or hangs."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_host.clock import Clock
from firmware_host.config import Band, LimitsConfig, parse_config
from firmware_host.daemon import Daemon
from firmware_host.events import Event, EventBus
from firmware_host.health.limits import (
    ERROR_RATE_STEP_S,
    ERROR_RATE_WINDOW_S,
    Level,
    Limit,
    LimitMonitor,
    default_limits,
)
from firmware_host.link.stats import LinkStats
from firmware_host.sdnotify import Notifier
from firmware_host.supervisor import Supervisor
from tests.daemon.test_runtime import until
from tests.harness import Credentials
from tests.virtual_time import run_virtual


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


def _level_as_defined(limit: Limit, value: float, current: Level, hysteresis: float) -> Level:
    """The definition: red at or past red, or still red until back past it by the margin;
    likewise yellow; a low limit is the same with every reading negated."""
    sign = -1.0 if limit.low else 1.0
    margin = hysteresis * abs(limit.band.red - limit.band.yellow)
    red, yellow, v = sign * limit.band.red, sign * limit.band.yellow, sign * value
    if v >= red or (current is Level.RED and v > red - margin):
        return Level.RED
    if v >= yellow or (current >= Level.YELLOW and v > yellow - margin):
        return Level.YELLOW
    return Level.OK


@given(
    low=st.booleans(),
    yellow=st.floats(-100, 100),
    width=st.floats(0.01, 50),
    value=st.floats(-200, 200),
    current=st.sampled_from(Level),
    hysteresis=st.floats(0, 0.5),
)
def test_a_level_is_what_the_definition_says(
    *, low: bool, yellow: float, width: float, value: float, current: Level, hysteresis: float
) -> None:
    band = Band(yellow, yellow - width) if low else Band(yellow, yellow + width)
    limit = Limit("x", frozenset({"camera"}), band, "", lambda s, _: None, low=low)
    assert limit.level(value, current, hysteresis) is _level_as_defined(
        limit, value, current, hysteresis
    )


@given(readings=st.lists(st.sampled_from([55.0, 59.9, 60.0, 61.5, 79.0, 80.0, 85.0]), max_size=80))
def test_a_value_judged_again_is_not_judged_anew_and_nothing_changes_for_it(
    readings: list[float],
) -> None:
    """The monitor skips a reading equal to the last one it judged (most polls: a steady
    temperature). The levels it keeps are still those the definition gives reading by
    reading, repeats included."""
    limits, events = monitor()
    limit = next(x for x in limits.limits if x.name == "camera.temperature")
    expected, changes = Level.OK, 0
    for reading in readings:
        limits.check("cam-a", "camera", FakeCameraStatus(round(reading * 100)), LinkStats())
        before, expected = expected, _level_as_defined(limit, reading, expected, 0.05)
        changes += expected is not before
        assert limits.levels.get(("cam-a", "camera.temperature"), Level.OK) is expected
    assert len(events) == changes


def test_the_link_error_rate_is_judged_over_its_window_and_clears_as_it_leaves() -> None:
    now = [0.0]
    bus = EventBus()
    events: list[tuple[float, str]] = []
    bus.subscribe(lambda event: events.append((now[0], event.name)))
    limits = LimitMonitor(
        bus, default_limits(LimitsConfig()), 0.05, clock=Clock(monotonic=lambda: now[0])
    )
    stats = LinkStats()
    status = FakeCameraStatus(3000, media_used_bytes=10, media_free_bytes=90)

    last_reject = [0.0]

    def polls(seconds: float, rejected_every: int = 0) -> None:
        for poll in range(round(seconds * 20)):  # 20 Hz, one frame a poll
            now[0] += 0.05
            stats.frames.frames += 1
            if rejected_every and poll % rejected_every == 0:
                stats.frames.rejected += 1
                last_reject[0] = now[0]
            limits.check("cam-a", "camera", status, stats)

    polls(ERROR_RATE_WINDOW_S)
    assert events == []
    polls(5, rejected_every=2)  # 50 rejects in 750 chunks: red (above 1 %)
    assert limits.levels["cam-a", "link.error_rate"] is Level.RED
    polls(2 * ERROR_RATE_WINDOW_S)  # good chunks only: the rejects age out of the window
    cleared = [at for at, name in events if name == "limit.link.error_rate.cleared"]
    assert len(cleared) == 1 and events[-1][1] == "limit.link.error_rate.cleared"
    # above yellow (0.1 %) for as long as a reject is in the window, and not a step longer
    assert last_reject[0] + ERROR_RATE_WINDOW_S - ERROR_RATE_STEP_S < cleared[0]
    assert cleared[0] <= last_reject[0] + ERROR_RATE_WINDOW_S + ERROR_RATE_STEP_S


def _supervised(*, jitter: float = 0.0, **options: float) -> tuple[Supervisor, list[Event]]:
    """A supervisor whose backoff jitter is pinned (`jitter` is the random draw, 0..1)."""
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe(events.append)
    return Supervisor(bus, random_source=lambda: jitter, **options), events


async def _run_for(supervisor: Supervisor, seconds: float) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(seconds, stop.set)
    await supervisor.run(stop)


def test_a_crashed_task_is_restarted_and_reported() -> None:
    supervisor, events = _supervised(min_backoff_s=0.01)
    starts: list[float] = []

    async def flaky() -> None:
        starts.append(asyncio.get_running_loop().time())
        if len(starts) < 3:
            raise RuntimeError("boom")
        await asyncio.sleep(60)

    supervisor.add("flaky", flaky)
    run_virtual(_run_for(supervisor, 0.3))  # virtual time: exact, whatever the load
    assert starts == pytest.approx([0.0, 0.01, 0.03])  # backoff doubling from 10 ms
    assert [e.name for e in events] == ["task.restarted", "task.restarted"]
    assert "RuntimeError('boom')" in events[0].message


def test_restarts_are_jittered_and_back_off_from_the_start_after_a_healthy_run() -> None:
    supervisor, _ = _supervised(jitter=1.0, min_backoff_s=1, max_backoff_s=8)
    starts: list[float] = []

    async def crashes() -> None:
        starts.append(asyncio.get_running_loop().time())
        if len(starts) == 3:
            await asyncio.sleep(100)  # a healthy spell, then a crash again
        raise RuntimeError("boom")

    supervisor.add("crashes", crashes)
    run_virtual(_run_for(supervisor, 105))
    # Jitter takes a quarter off each delay (1, 2, then 1 again after the healthy spell).
    assert starts[:4] == pytest.approx([0, 0.75, 0.75 + 1.5, 0.75 + 1.5 + 100 + 0.75])


def test_a_hung_task_is_cancelled_and_restarted() -> None:
    supervisor, events = _supervised(min_backoff_s=0.01)
    starts: list[float] = []

    async def stalls() -> None:
        starts.append(asyncio.get_running_loop().time())
        supervisor.beat("stalls")
        await asyncio.Event().wait()  # never beats again

    supervisor.add("stalls", stalls, watchdog_s=0.5)
    run_virtual(_run_for(supervisor, 1.4))
    # The watchdog looks every 0.5 s: silent for more than 0.5 s at t = 1.0, restarted 10 ms on.
    assert starts == pytest.approx([0.0, 1.01])
    assert events and "hung" in events[0].message and events[0].data["reason"] == "hung"


def test_a_task_that_raises_timeout_itself_is_a_crash_not_a_hang() -> None:
    supervisor, events = _supervised(min_backoff_s=0.01)

    async def times_out() -> None:
        supervisor.beat("link")
        async with asyncio.timeout(0.1):
            await asyncio.Event().wait()

    supervisor.add("link", times_out, watchdog_s=5)
    run_virtual(_run_for(supervisor, 0.15))
    assert events[0].data["reason"] == "TimeoutError()"


def test_run_returns_only_when_every_task_has_ended() -> None:
    supervisor, _ = _supervised()
    ended: list[str] = []

    def forever(name: str) -> Callable[[], Coroutine[Any, Any, None]]:
        async def run() -> None:
            try:
                await asyncio.Event().wait()
            finally:
                await asyncio.sleep(0.5)  # cleans up for a while, as closing a port does
                ended.append(name)

        return run

    supervisor.add("a", forever("a"))
    supervisor.add("b", forever("b"))

    async def main() -> None:
        await _run_for(supervisor, 1.0)
        assert sorted(ended) == ["a", "b"]
        assert all(t.task is not None and t.task.done() for t in supervisor.tasks.values())

    run_virtual(main())


def test_a_task_that_fails_as_it_is_stopped_is_stopped_not_restarted() -> None:
    """A device task stopped while its link is failing: its own TaskGroup turns the cancel
    into the link's error (a port closed under a pending request), which looks like a crash.
    The stop wins: no restart, no beat from a task already let go, and stop() returns (found
    in-process: the daemon's shutdown waited forever on a Modbus meter being restarted)."""
    supervisor, events = _supervised(min_backoff_s=0.01)
    beat = supervisor.beater("meter")
    runs: list[float] = []

    async def meter() -> None:
        runs.append(asyncio.get_running_loop().time())
        beat()

        async def request() -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                raise ConnectionError("port closed under a pending request") from None

        async with asyncio.TaskGroup() as group:
            group.create_task(request())

    supervisor.add("meter", meter, watchdog_s=5)
    supervisor.add("other", lambda: asyncio.Event().wait())

    async def main() -> None:
        stop = asyncio.Event()
        running = asyncio.create_task(supervisor.run(stop))
        await asyncio.sleep(1)
        async with asyncio.timeout(10):
            await supervisor.stop(["meter"])
        stop.set()
        await running

    run_virtual(main())
    assert runs == [0.0]
    assert not events  # stopped, never reported as a crash and restarted


def test_all_started_waits_for_the_task_that_says_when_it_is_up() -> None:
    supervisor, _ = _supervised()
    bound = asyncio.Event()

    async def binds_late() -> None:
        await asyncio.sleep(5)  # as a socket that takes a while to bind
        bound.set()
        await asyncio.Event().wait()

    async def plain() -> None:
        await asyncio.Event().wait()

    supervisor.add("plain", plain)
    supervisor.add("late", binds_late, started=bound)

    async def main() -> float:
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            group.create_task(supervisor.run(stop))
            await supervisor.all_started()
            stop.set()
        return asyncio.get_running_loop().time()

    assert run_virtual(main()) == pytest.approx(5.0)


def test_the_daemon_tells_systemd_it_is_ready_alive_and_stopping(
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
    )

    async def run_for_a_while() -> None:  # virtual time: the heartbeat count is exact
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(1.3, stop.set)
        await Daemon(config).run(stop)

    run_virtual(run_for_a_while())
    messages = []
    with contextlib.suppress(BlockingIOError):
        while True:
            messages.append(listener.recv(4096).decode())
    listener.close()
    assert messages[0].startswith("READY=1")
    assert messages.count("WATCHDOG=1") == 2  # at 0.5 s and 1.0 s
    assert messages[-1] == "STOPPING=1"


async def test_ready_is_said_only_once_the_tap_socket_exists_and_commands_are_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = Credentials(tmp_path)
    config = parse_config(
        f'[node]\nstate_dir = "{tmp_path}"\n[mqtt]\nurl = "mqtt://127.0.0.1:1"\n'
        f'[auth]\nkeyring = "{keys.keyring}"\n'
    )
    daemon = Daemon(config)
    tap_socket = tmp_path / config.node.tap_socket
    consuming: list[bool] = []
    process_next = daemon.intake.process_next

    async def consume(timeout: float) -> bool:
        consuming.append(True)
        return await process_next(timeout)

    monkeypatch.setattr(daemon.intake, "process_next", consume)
    at_ready: list[tuple[bool, bool]] = []  # (tap socket there, commands consumed) when told
    monkeypatch.setattr(
        Notifier, "ready", lambda _, status: at_ready.append((tap_socket.exists(), any(consuming)))
    )
    stop = asyncio.Event()
    runner = asyncio.create_task(daemon.run(stop))
    await until(lambda: bool(at_ready), "systemd is told READY=1")
    stop.set()
    await runner
    assert at_ready == [(True, True)]
