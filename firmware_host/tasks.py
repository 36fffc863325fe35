"""Tasks a component starts on demand (a power-up, a reconciliation, a sequence run) belong to
the component's supervised `run()`: they end when it ends, so none outlives the daemon and none
can touch a database after shutdown closed it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from types import TracebackType
from typing import Any


def being_cancelled(task: asyncio.Task[Any] | None = None) -> bool:
    """This task was asked to stop (a cancel is pending or was swallowed on its way). A loop
    that asks at every turn passes its task, held: finding the current one asks for the
    running loop, a getpid system call in Python 3.11."""
    if task is None:
        task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def stop_if_cancelled(task: asyncio.Task[Any] | None = None) -> None:
    """Raise CancelledError if this task was asked to stop: for loops that must end on a cancel
    some library swallowed. Python 3.11's `wait_for` (inside pymodbus) returns the result of a
    future that completed in the same instant as the cancel, and a device loop that never
    awaited a cancel again held the daemon's shutdown forever."""
    if being_cancelled(task):
        raise asyncio.CancelledError


class NotRunning(RuntimeError):
    """The owning component is not running (not started yet, restarting or stopped)."""


class TaskOwner:
    """A TaskGroup that exists while its component runs: `async with owner:` in `run()`."""

    def __init__(self, component: str) -> None:
        self.component = component
        self._group: asyncio.TaskGroup | None = None
        self._entered: asyncio.TaskGroup | None = None

    @property
    def running(self) -> bool:
        return self._group is not None

    def start(self, work: Coroutine[Any, Any, None], *, name: str) -> asyncio.Task[None]:
        """Run `work` as a task of this component; NotRunning if the component is not."""
        if self._group is None:
            work.close()
            raise NotRunning(f"{self.component} is not running")
        return self._group.create_task(work, name=name)

    async def __aenter__(self) -> TaskOwner:
        if self._entered is not None:
            raise RuntimeError(f"{self.component} runs twice")
        self._entered = asyncio.TaskGroup()
        self._group = await self._entered.__aenter__()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        group, self._entered, self._group = self._entered, None, None  # no new task from now
        assert group is not None
        await group.__aexit__(kind, error, trace)

    async def serve(self) -> None:
        """`run()` for a component with no loop of its own: own its tasks until cancelled."""
        async with self:
            await asyncio.Event().wait()
