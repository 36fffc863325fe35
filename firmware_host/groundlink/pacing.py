"""Downlink pacing: a token bucket over the bytes the stream may send right now.

The budget governor sets the rate from the day's downlink allocation and the contact
schedule (zero outside a contact window); without it the stream is unpaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import time


class Pacer:
    def __init__(self, rate_bytes_per_s: float | None = None, burst_bytes: int = 65_536) -> None:
        self.rate = rate_bytes_per_s
        self.burst = burst_bytes
        self._tokens = float(burst_bytes)
        self._stamp = time.monotonic()
        self._changed = asyncio.Event()
        self.spent = 0  # bytes granted since start

    def set_rate(self, rate_bytes_per_s: float | None) -> None:
        """None: unpaced; 0: nothing may be sent (outside a contact window)."""
        self._refill()
        self.rate = rate_bytes_per_s
        self._changed.set()

    def _refill(self) -> None:
        now = time.monotonic()
        if self.rate:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def spend(self, size: int) -> None:
        """Wait until `size` bytes may be sent, then account for them."""
        while True:
            if self.rate is None:
                break
            self._refill()
            if self._tokens >= min(size, self.burst):
                self._tokens -= size
                break
            self._changed.clear()
            wait = None if self.rate == 0 else (min(size, self.burst) - self._tokens) / self.rate
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), wait)
        self.spent += size
