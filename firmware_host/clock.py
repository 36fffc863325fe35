"""The daemon's one clock: the time of day, for stamps and timecode, and a monotonic reading,
for timers, deadlines and rates.

The composition root builds one and hands it (or one of its two readings) to everything that
stamps, waits, times out, backs off or watches, so nothing reads the machine's clock behind
its back. `Clock.of_loop` follows an event loop's own clock, which `asyncio.sleep` and
`asyncio.timeout` use too: on a virtual-time loop (tests/virtual_time.py) the whole daemon's
logic then runs on virtual time, the time of day included.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Clock:
    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.wall = wall
        self.monotonic = monotonic

    @classmethod
    def of_loop(cls, loop: asyncio.AbstractEventLoop, epoch: float) -> Clock:
        """A clock that reads `loop.time()`; its time of day was `epoch` at loop time zero."""
        return cls(wall=lambda: epoch + loop.time(), monotonic=loop.time)


SYSTEM = Clock()
