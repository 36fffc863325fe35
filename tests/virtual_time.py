"""An asyncio event loop on virtual time: when nothing is ready, time jumps to the next timer.

The idea of trio's `MockClock(autojump_threshold=0)`: code that sleeps, times out or backs
off runs at once and always the same way, whatever the machine's load, because the only
clock it reads is the loop's (`loop.time()`, which `asyncio.sleep` and `asyncio.timeout` use).
Ready I/O is still served first, so in-process pipes and sockets work; a loop with nothing
scheduled and nothing ready blocks on real I/O as any loop would.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _JumpingSelector(selectors.DefaultSelector):
    """Instead of waiting `timeout` for I/O that is not there, advance the clock by it."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or timeout is None or timeout <= 0:
            return ready if ready or timeout is not None else super().select(None)
        self.now += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._jumping = _JumpingSelector()
        super().__init__(selector=self._jumping)

    def time(self) -> float:
        return self._jumping.now


def run_virtual(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` to completion on virtual time; returns its result."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
