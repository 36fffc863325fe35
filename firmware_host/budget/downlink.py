"""The downlink allocation: a daily byte budget spent in contact windows, telemetry first.

The film's share of the downlink (reference: 5 GB a day in 4 to 6 contact windows of 10 to
20 minutes) is spread over the windows still to come today; inside a window the stream may
send at the window's share per second of window left (capped by the link), outside every
window nothing is sent and the outbox waits. Telemetry (events, results, samples, measured
from what the stream actually sent) has priority; proxies of circled takes, modelled from
their duration and the proxy bitrate, take what is left in each window. With no contact
schedule configured the link is taken as always available and only the daily budget is
accounted.
"""

from __future__ import annotations

import datetime
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ContactWindow:
    start_s: float  # seconds after midnight UTC, every day
    duration_s: float

    def contains(self, second: float) -> bool:
        return self.start_s <= second < self.start_s + self.duration_s


@dataclass
class Proxy:
    take_id: int
    size: float
    sent: float = 0.0


class DownlinkBudget:
    def __init__(
        self,
        *,
        bytes_per_day: float,
        windows: list[ContactWindow],
        link_bytes_per_s: float,
        proxy_kbps: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bytes_per_day = bytes_per_day
        self.windows = sorted(windows, key=lambda w: w.start_s)
        self.link_bytes_per_s = link_bytes_per_s
        self.proxy_kbps = proxy_kbps
        self.clock = clock
        self.day = self._today()
        self.telemetry_today = 0.0
        self.proxies_today = 0.0
        self.proxies: deque[Proxy] = deque()
        self.proxies_done: list[int] = []
        self._last_tick = clock()

    def saved(self) -> dict[str, Any]:
        """What must survive a restart: today's spending and the proxies still queued."""
        return {
            "day": self.day.isoformat(),
            "telemetry": self.telemetry_today,
            "proxies": self.proxies_today,
            "queue": [[p.take_id, p.size, p.sent] for p in self.proxies],
        }

    def restore(self, saved: dict[str, Any]) -> None:
        queued = saved["queue"]
        self.proxies.extend(Proxy(int(t), float(size), float(sent)) for t, size, sent in queued)
        if saved["day"] == self.day.isoformat():
            self.telemetry_today = float(saved["telemetry"])
            self.proxies_today = float(saved["proxies"])

    def _today(self) -> datetime.date:
        return datetime.datetime.fromtimestamp(self.clock(), datetime.UTC).date()

    def _second(self) -> float:
        return self.clock() % 86400.0

    def used_today(self) -> float:
        return self.telemetry_today + self.proxies_today

    def window_now(self) -> ContactWindow | None:
        if not self.windows:
            return None
        second = self._second()
        return next((w for w in self.windows if w.contains(second)), None)

    def in_contact(self) -> bool:
        return not self.windows or self.window_now() is not None

    def rate(self) -> float | None:
        """Bytes per second the stream may use now; None: unpaced; 0: wait."""
        left_today = self.bytes_per_day - self.used_today()
        if left_today <= 0:
            return 0.0
        if not self.windows:
            return None
        window = self.window_now()
        if window is None:
            return 0.0
        second = self._second()
        windows_left = [w for w in self.windows if w.start_s + w.duration_s > second]
        time_left = sum(
            w.duration_s if w is not window else w.start_s + w.duration_s - second
            for w in windows_left
        )
        return min(self.link_bytes_per_s, left_today / max(time_left, 1.0))

    def queue_proxy(self, take_id: int, duration_s: float) -> None:
        self.proxies.append(Proxy(take_id, duration_s * self.proxy_kbps * 1000 / 8))

    def tick(self, telemetry_sent: float) -> None:
        """Account what the stream sent since the last tick; let proxies use the rest."""
        now = self.clock()
        elapsed = max(0.0, now - self._last_tick)
        self._last_tick = now
        if self._today() != self.day:
            self.day = self._today()
            self.telemetry_today = self.proxies_today = 0.0
        self.telemetry_today += telemetry_sent
        if not self.in_contact():
            return
        rate = self.rate()
        capacity = (self.link_bytes_per_s if rate is None else rate) * elapsed - telemetry_sent
        capacity = min(capacity, self.bytes_per_day - self.used_today())
        while capacity > 0 and self.proxies:
            proxy = self.proxies[0]
            chunk = min(capacity, proxy.size - proxy.sent)
            proxy.sent += chunk
            self.proxies_today += chunk
            capacity -= chunk
            if proxy.sent >= proxy.size:
                self.proxies_done.append(self.proxies.popleft().take_id)

    def fraction_used(self) -> float:
        return self.used_today() / self.bytes_per_day if self.bytes_per_day else 1.0

    def next_window(self) -> dict[str, Any] | None:
        if not self.windows:
            return None
        second = self._second()
        upcoming = [w for w in self.windows if w.start_s > second] or self.windows
        window = upcoming[0]
        wait = (window.start_s - second) % 86400.0
        return {"starts_in_s": round(wait), "duration_s": window.duration_s}

    def status(self) -> dict[str, Any]:
        return {
            "allocation_gb": round(self.bytes_per_day / 1e9, 3),
            "telemetry_mb": round(self.telemetry_today / 1e6, 3),
            "proxies_mb": round(self.proxies_today / 1e6, 3),
            "used_fraction": round(self.fraction_used(), 5),
            "proxies_queued": len(self.proxies),
            "proxies_done": len(self.proxies_done),
            "in_contact": self.in_contact(),
            "rate_bytes_per_s": self.rate(),
            "next_window": self.next_window(),
        }
