"""What every device model shares: clocks, refusals and the events a model raises."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from protocols.messages.common import EventCode, NackCode, Severity


class Refusal(Exception):
    """A model declines a request; the device answers with a NACK carrying `code`."""

    def __init__(self, code: NackCode, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class ModelEvent:
    code: EventCode
    severity: Severity
    value: int
    detail: str
    at: float  # physics time


class PhysicsClock:
    """Simulated seconds: wall time scaled by `speed`, so long scenarios can run compressed."""

    def __init__(self, speed: float = 1.0, source: Callable[[], float] = time.monotonic) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self._source = source
        self._origin_real = source()
        self._origin_sim = 0.0
        self.speed = speed

    def now(self) -> float:
        return self._origin_sim + (self._source() - self._origin_real) * self.speed

    def set_speed(self, speed: float) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self._origin_sim = self.now()
        self._origin_real = self._source()
        self.speed = speed


class ManualClock:
    """A clock tests move by hand, for exact physics checks (also usable as a wall clock)."""

    speed = 1.0

    def __init__(self, start: float = 0.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def first_order(value: float, target: float, dt: float, tau: float) -> float:
    """A first-order lag (thermal mass) after `dt` seconds."""
    return target + (value - target) * math.exp(-dt / tau)


def time_to_reach(value: float, target: float, limit: float, tau: float) -> float:
    """Seconds until a first-order lag from `value` towards `target` crosses `limit`."""
    if (value - limit) * (target - limit) > 0 or target == value:
        return math.inf
    ratio = (limit - target) / (value - target)
    if ratio <= 0:
        return math.inf
    return -tau * math.log(ratio)
