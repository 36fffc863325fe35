"""Downlink pacing: a token bucket over the bytes the stream may send right now.

The budget sets the rate from the housekeeping allocation and the contact schedule (zero while
the stream is held); without it the stream is unpaced. The bucket starts empty and is emptied
whenever the rate drops to zero, so no credit saved before a start, a reconnect or a hold is
ever spent at rate zero. Messages that must go out unpaced (the birth, the hold notice) are
charged: the stream then waits until the bucket has paid for them. Latest-wins messages (device
states) only take credit nobody waits for, so the stream's alarms and results go first.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

MIN_WAIT_S = 1e-6


class Pacer:
    def __init__(
        self,
        rate_bytes_per_s: float | None = None,
        burst_bytes: int = 65_536,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate_bytes_per_s
        self.burst = burst_bytes
        self.clock = clock
        self._tokens = 0.0
        self._stamp = clock()
        self._changed = asyncio.Event()
        self._waiting = 0  # spend() calls waiting for credit
        self.spent = 0  # bytes granted or charged since start

    def set_rate(self, rate_bytes_per_s: float | None) -> None:
        """None: unpaced; 0: nothing may be sent (the stream is held)."""
        self._refill()
        self.rate = rate_bytes_per_s
        if rate_bytes_per_s == 0:
            self._tokens = min(self._tokens, 0.0)  # a debt stays owed; no credit survives
        self._changed.set()

    def charge(self, size: int) -> None:
        """Account bytes sent outside the stream: the stream pays them back before it sends."""
        self._refill()
        if self.rate is not None:
            self._tokens -= size
        self.spent += size

    def try_spend(self, size: int) -> bool:
        """Take `size` bytes now if there is credit and the stream is not waiting for it."""
        if self.rate is None:
            self.spent += size
            return True
        self._refill()
        if self._waiting or self.rate == 0 or self._tokens < size:
            return False
        self._tokens -= size
        self.spent += size
        return True

    def _refill(self) -> None:
        now = self.clock()
        if self.rate:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def spend(self, size: int) -> None:
        """Wait until `size` bytes may be sent, then account for them."""
        while True:
            if self.rate is None:
                break
            self._refill()
            if self.rate > 0 and self._tokens >= min(size, self.burst):
                self._tokens -= size
                break
            self._changed.clear()
            # At least a microsecond: a deficit a rounding error wide would otherwise ask
            # for a wait shorter than the clock can tell, which ends with no time passed.
            wait = (
                None
                if self.rate == 0
                else max(MIN_WAIT_S, (min(size, self.burst) - self._tokens) / self.rate)
            )
            self._waiting += 1
            try:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):  # not wait_for: it can eat a cancel
                        await self._changed.wait()
            finally:
                self._waiting -= 1
        self.spent += size
