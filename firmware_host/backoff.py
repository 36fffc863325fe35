"""One reconnect and restart schedule for everything that retries (device links, the broker,
supervised tasks): exponential backoff with bounded jitter, back to the start once healthy.

The jitter keeps retries that failed together (every device on a rebooted hub, the broker and
its clients after an outage) from retrying together. It only ever shortens a delay, by at most
`jitter` of it, so no delay exceeds `max_s`. The random source is injected: tests pin it.
"""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    def __init__(
        self,
        first_s: float,
        max_s: float,
        *,
        jitter: float = 0.25,
        random_source: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < first_s <= max_s:
            raise ValueError(f"backoff needs 0 < first ({first_s}) <= max ({max_s})")
        if not 0 <= jitter < 1:
            raise ValueError(f"jitter {jitter} is not a fraction in [0, 1)")
        self.first_s = first_s
        self.max_s = max_s
        self.jitter = jitter
        self._random = random_source
        self.nominal_s = first_s  # the next delay before jitter

    def next(self) -> float:
        """The delay before the next attempt; the one after is twice as long, up to max_s."""
        delay = self.nominal_s * (1 - self.jitter * self._random())
        self.nominal_s = min(self.nominal_s * 2, self.max_s)
        return delay

    def reset(self) -> None:
        """It worked (connected, ran healthily): the next failure retries soon again."""
        self.nominal_s = self.first_s
