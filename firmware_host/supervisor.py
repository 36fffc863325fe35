"""Every long-running task of the daemon lives under this supervisor.

A task that returns or raises is reported as an event and restarted with exponential backoff
and jitter (`Backoff`, reset once it has run cleanly for a while). A task with a watchdog must
show a sign of life (`beat`) within its deadline; one that does not is hung: it is cancelled,
reported and restarted like a crash. Nothing dies or hangs silently. Every task belongs to one
TaskGroup, so none outlives `run`: when it returns, every task has ended. Time is the event
loop's, so a test's virtual-time loop drives backoff and watchdogs without waiting.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from firmware_host.backoff import Backoff
from firmware_host.events import EventBus
from firmware_host.tasks import being_cancelled
from protocols.messages.common import Severity

log = logging.getLogger(__name__)

HEALTHY_AFTER_S = 30.0
WATCH_INTERVAL_S = 0.5


def _now() -> float:
    return asyncio.get_running_loop().time()


@dataclass
class TaskRecord:
    name: str
    run: Callable[[], Coroutine[Any, Any, None]]
    watchdog_s: float | None = None
    restarts: int = 0
    last_error: str = ""
    last_beat: float | None = None  # loop time; None until the task first runs
    scope: asyncio.Timeout | None = None  # the current run's, expired by the watchdog
    task: asyncio.Task[None] | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)  # it is really up
    says_started: bool = False  # the task sets `started` itself, else it is set as it begins


class Supervisor:
    def __init__(
        self,
        bus: EventBus,
        *,
        min_backoff_s: float = 0.2,
        max_backoff_s: float = 30.0,
        random_source: Callable[[], float] = random.random,
        on_healthy: Callable[[], None] = lambda: None,
    ) -> None:
        """`on_healthy` is called every watchdog tick while every task is healthy (systemd's
        WATCHDOG=1)."""
        self.bus = bus
        self._backoff_s = (min_backoff_s, max_backoff_s)
        self._random = random_source
        self.tasks: dict[str, TaskRecord] = {}
        self.on_healthy = on_healthy
        self._group: asyncio.TaskGroup | None = None
        # The loop `run` runs on: every device beats at every poll, and asking asyncio for the
        # running loop is a getpid system call in Python 3.11.
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(
        self,
        name: str,
        run: Callable[[], Coroutine[Any, Any, None]],
        *,
        watchdog_s: float | None = None,
        started: asyncio.Event | None = None,
    ) -> None:
        """Supervise `run`; a task that is up only some way into its run (a socket bound, a
        queue consumed) passes the `started` event it sets then."""
        if name in self.tasks:
            raise ValueError(f"task {name!r} supervised twice")
        record = TaskRecord(name, run, watchdog_s)
        if started is not None:
            record.started, record.says_started = started, True
        self.tasks[name] = record
        if self._group is not None:
            record.task = self._group.create_task(self._keep(record), name=name)

    def beat(self, name: str) -> None:
        """A sign of life from task `name` (tasks with a watchdog call this in their loop); one
        being stopped may still beat as it winds down."""
        record = self.tasks.get(name)
        if record is not None:
            record.last_beat = self._loop.time() if self._loop is not None else _now()

    def beater(self, name: str) -> Callable[[], None]:
        return lambda: self.beat(name)

    async def run(self, stop: asyncio.Event) -> None:
        """Run every task until `stop` is set; return once all of them have ended."""
        self._loop = asyncio.get_running_loop()
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                for record in self.tasks.values():
                    record.task = group.create_task(self._keep(record), name=record.name)
                watch = group.create_task(self._watch(), name="watchdog")
                try:
                    await stop.wait()
                finally:
                    self._group = None
                    watch.cancel()
                    for record in self.tasks.values():
                        if record.task is not None:
                            record.task.cancel()
        finally:
            self._loop = None  # a later run may be on another loop, with another clock

    async def all_started(self) -> None:
        """Return once every task has started (readiness: systemd is told only then)."""
        for record in list(self.tasks.values()):
            await record.started.wait()

    async def stop(self, names: Iterable[str]) -> None:
        """Stop the named tasks for good (shutdown, in order); returns once they have ended."""
        tasks = []
        for name in names:
            record = self.tasks.pop(name)
            if record.task is not None:
                record.task.cancel()
                tasks.append(record.task)
        if tasks:
            await asyncio.wait(tasks)

    def status(self) -> dict[str, dict[str, object]]:
        return {
            name: {"restarts": r.restarts, "last_error": r.last_error}
            for name, r in self.tasks.items()
        }

    def healthy(self) -> bool:
        """No supervised task is overdue on its watchdog."""
        now = _now()
        return not any(self._overdue(r, now) for r in self.tasks.values())

    @staticmethod
    def _overdue(record: TaskRecord, now: float) -> bool:
        return (
            record.watchdog_s is not None
            and record.last_beat is not None
            and now - record.last_beat > record.watchdog_s
        )

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            if self.healthy():
                self.on_healthy()
            now = _now()
            for record in self.tasks.values():
                if record.scope is not None and self._overdue(record, now):
                    record.scope.reschedule(now)  # its run ends with TimeoutError: hung

    async def _keep(self, record: TaskRecord) -> None:
        backoff = Backoff(*self._backoff_s, random_source=self._random)
        while True:
            started = record.last_beat = _now()
            if not record.says_started:
                record.started.set()
            try:
                async with asyncio.timeout(None) as scope:
                    record.scope = scope
                    await record.run()
                record.last_error = "returned"
                message = f"task {record.name} returned unexpectedly"
            except Exception as exc:
                if being_cancelled():
                    # Stopped while failing: a TaskGroup inside turned the cancel into its
                    # children's errors (a port closed under a pending request). The stop wins.
                    raise asyncio.CancelledError from exc
                if isinstance(exc, TimeoutError) and scope.expired():
                    record.last_error = "hung"
                    message = (
                        f"task {record.name} hung: no sign of life for {record.watchdog_s:g} s"
                    )
                    log.warning(message)
                else:
                    record.last_error = repr(exc)
                    message = f"task {record.name} crashed: {exc!r}"
                    log.exception(message)
            finally:
                record.scope = None
            if _now() - started > HEALTHY_AFTER_S:
                backoff.reset()
            delay = backoff.next()
            record.restarts += 1
            self.bus.emit(
                "task.restarted",
                Severity.CRITICAL,
                f"{message}; restart {record.restarts} in {delay:.1f} s",
                source=record.name,
                restarts=record.restarts,
                reason=record.last_error,
            )
            await asyncio.sleep(delay)
