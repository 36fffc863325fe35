"""Every long-running task of the daemon lives under this supervisor.

A task that returns or raises is reported as an event and restarted with exponential
backoff (reset once it has run cleanly for a while). A task with a watchdog must show a sign
of life (`beat`) within its deadline; one that does not is hung: it is cancelled, reported
and restarted like a crash. Nothing dies or hangs silently, and shutdown cancels everything
in one place.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from firmware_host.events import EventBus
from protocols.messages.common import Severity

log = logging.getLogger(__name__)

HEALTHY_AFTER_S = 30.0
WATCH_INTERVAL_S = 0.5


@dataclass
class TaskRecord:
    name: str
    run: Callable[[], Coroutine[Any, Any, None]]
    watchdog_s: float | None = None
    restarts: int = 0
    last_error: str = ""
    last_beat: float = 0.0
    hung: bool = False
    task: asyncio.Task[None] | None = None
    inner: asyncio.Task[None] | None = None


class Supervisor:
    def __init__(
        self, bus: EventBus, *, min_backoff_s: float = 0.2, max_backoff_s: float = 30.0
    ) -> None:
        self.bus = bus
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.tasks: dict[str, TaskRecord] = {}
        self.on_healthy: Callable[[], None] | None = None  # called every tick while healthy
        self._running = False

    def add(
        self,
        name: str,
        run: Callable[[], Coroutine[Any, Any, None]],
        *,
        watchdog_s: float | None = None,
    ) -> None:
        if name in self.tasks:
            raise ValueError(f"task {name!r} supervised twice")
        record = TaskRecord(name, run, watchdog_s, last_beat=time.monotonic())
        self.tasks[name] = record
        if self._running:
            record.task = asyncio.create_task(self._keep(record), name=name)

    def beat(self, name: str) -> None:
        """A sign of life from task `name` (tasks with a watchdog call this in their loop)."""
        self.tasks[name].last_beat = time.monotonic()

    def beater(self, name: str) -> Callable[[], None]:
        return lambda: self.beat(name)

    async def run(self, stop: asyncio.Event) -> None:
        self._running = True
        for record in self.tasks.values():
            record.task = asyncio.create_task(self._keep(record), name=record.name)
        watch = asyncio.create_task(self._watch(), name="watchdog")
        try:
            await stop.wait()
        finally:
            self._running = False
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
            await self.shutdown()

    async def shutdown(self) -> None:
        tasks = [r.task for r in self.tasks.values() if r.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def status(self) -> dict[str, dict[str, object]]:
        return {
            name: {"restarts": r.restarts, "last_error": r.last_error}
            for name, r in self.tasks.items()
        }

    def healthy(self) -> bool:
        """No supervised task is overdue on its watchdog."""
        now = time.monotonic()
        return all(
            r.watchdog_s is None or now - r.last_beat <= r.watchdog_s for r in self.tasks.values()
        )

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            if self.on_healthy is not None and self.healthy():
                self.on_healthy()
            now = time.monotonic()
            for record in self.tasks.values():
                inner = record.inner
                if (
                    record.watchdog_s is not None
                    and inner is not None
                    and not inner.done()
                    and now - record.last_beat > record.watchdog_s
                ):
                    record.hung = True
                    inner.cancel()

    async def _keep(self, record: TaskRecord) -> None:
        backoff = self.min_backoff_s
        while True:
            started = time.monotonic()
            record.last_beat = started
            record.hung = False
            record.inner = asyncio.create_task(record.run(), name=f"{record.name}:run")
            try:
                await record.inner
                record.last_error = "returned"
                message = f"task {record.name} returned unexpectedly"
            except asyncio.CancelledError:
                if not record.hung:
                    raise  # shutdown
                record.last_error = "hung"
                message = f"task {record.name} hung: no sign of life for {record.watchdog_s:g} s"
                log.warning(message)
            except Exception as exc:
                record.last_error = repr(exc)
                message = f"task {record.name} crashed: {exc!r}"
                log.exception(message)
            if time.monotonic() - started > HEALTHY_AFTER_S:
                backoff = self.min_backoff_s
            record.restarts += 1
            self.bus.emit(
                "task.restarted",
                Severity.CRITICAL,
                f"{message}; restart {record.restarts} in {backoff:.1f} s",
                source=record.name,
                restarts=record.restarts,
                reason=record.last_error,
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)
