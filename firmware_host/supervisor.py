"""Every long-running task of the daemon lives under this supervisor.

A task that returns or raises is reported as an event and restarted with exponential
backoff (reset once it has run cleanly for a while). Nothing dies silently, and shutdown
cancels everything in one place.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from firmware_host.events import EventBus
from protocols.messages.common import Severity

log = logging.getLogger(__name__)

HEALTHY_AFTER_S = 30.0


@dataclass
class TaskRecord:
    name: str
    run: Callable[[], Awaitable[None]]
    restarts: int = 0
    last_error: str = ""
    task: asyncio.Task[None] | None = None


class Supervisor:
    def __init__(self, bus: EventBus, *, min_backoff_s: float = 0.2, max_backoff_s: float = 30.0):
        self.bus = bus
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.tasks: dict[str, TaskRecord] = {}
        self._running = False

    def add(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        if name in self.tasks:
            raise ValueError(f"task {name!r} supervised twice")
        record = TaskRecord(name, run)
        self.tasks[name] = record
        if self._running:
            record.task = asyncio.create_task(self._keep(record), name=name)

    async def run(self, stop: asyncio.Event) -> None:
        self._running = True
        for record in self.tasks.values():
            record.task = asyncio.create_task(self._keep(record), name=record.name)
        try:
            await stop.wait()
        finally:
            self._running = False
            await self.shutdown()

    async def shutdown(self) -> None:
        tasks = [r.task for r in self.tasks.values() if r.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _keep(self, record: TaskRecord) -> None:
        backoff = self.min_backoff_s
        while True:
            started = time.monotonic()
            try:
                await record.run()
                record.last_error = "returned"
                message = f"task {record.name} returned unexpectedly"
            except asyncio.CancelledError:
                raise
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
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)
