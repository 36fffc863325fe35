"""The downlink's two link classes: bulk (proxies, files) and housekeeping (the stream).

Bulk: the film's daily share (reference: 5 GB a day in 4 to 6 contact windows of 10 to 20
minutes) is spread over the windows still to come today; inside a window proxies of circled
takes, modelled from their duration and the proxy bitrate, go at the window's share per
second of window left (capped by the link); outside every window nothing is sent.

Housekeeping (events, alarms, results, sampled telemetry: the outbox's stream, measured from
what it actually sent) is a separate, small allocation: a rate, a daily cap, and either
continuous or windowed, as the segment's links are. When it may not send, the stream is held
and `housekeeping_hold` says why and until when, so the ground can be told before it happens.
With no contact schedule configured the link is taken as always available.
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
        return (second - self.start_s) % 86400.0 < self.duration_s  # across midnight too


CONTACT_SCHEDULE = "contact schedule"
BUDGET_EXHAUSTED = "budget exhausted"


@dataclass(frozen=True)
class Hold:
    """Why the housekeeping stream may not send, and when it expects to send again."""

    reason: str  # CONTACT_SCHEDULE or BUDGET_EXHAUSTED
    until: float  # unix time


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
        housekeeping_bytes_per_s: float | None = None,
        housekeeping_bytes_per_day: float | None = None,
        housekeeping_windowed: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bytes_per_day = bytes_per_day
        self.windows = sorted(windows, key=lambda w: w.start_s)
        self.link_bytes_per_s = link_bytes_per_s
        self.proxy_kbps = proxy_kbps
        self.housekeeping_bytes_per_s = housekeeping_bytes_per_s
        self.housekeeping_bytes_per_day = housekeeping_bytes_per_day
        self.housekeeping_windowed = housekeeping_windowed
        self.clock = clock
        self.day = self._today()
        self.telemetry_today = 0.0  # housekeeping: what the stream sent today
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
        """Bulk bytes sent today (housekeeping has its own allocation)."""
        return self.proxies_today

    def window_now(self) -> ContactWindow | None:
        return self._window_at(self.clock())

    def _window_at(self, when: float) -> ContactWindow | None:
        second = when % 86400.0
        return next((w for w in self.windows if w.contains(second)), None)

    def _next_start(self, when: float) -> float:
        """The start of the first window opening after `when` (outside every window)."""
        midnight = when - when % 86400.0
        starts = [midnight + w.start_s + day for day in (0.0, 86400.0) for w in self.windows]
        return min(start for start in starts if start > when)

    def housekeeping_hold(self, lead_s: float = 0.0) -> Hold | None:
        """The hold in force now or within `lead_s`: announced that early, while the link is."""
        now = self.clock()
        daily = self.housekeeping_bytes_per_day
        if daily is not None and self.telemetry_today >= daily:
            return Hold(BUDGET_EXHAUSTED, now - now % 86400.0 + 86400.0)
        if not (self.housekeeping_windowed and self.windows):
            return None
        for when in (now, now + lead_s):
            if self._window_at(when) is None:
                return Hold(CONTACT_SCHEDULE, self._next_start(when))
        return None

    def housekeeping_rate(self) -> float | None:
        """Bytes per second the stream may use now; None: unpaced; 0: held."""
        return 0.0 if self.housekeeping_hold() is not None else self.housekeeping_bytes_per_s

    def in_contact(self) -> bool:
        return not self.windows or self.window_now() is not None

    def rate(self) -> float | None:
        """Bytes per second bulk (proxies, files) may use now; None: unpaced; 0: wait."""
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
        capacity = (self.link_bytes_per_s if rate is None else rate) * elapsed
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
            "telemetry_mb": round(self.telemetry_today / 1e6, 3),  # housekeeping today
            "housekeeping": self._housekeeping_status(),
            "proxies_mb": round(self.proxies_today / 1e6, 3),
            "used_fraction": round(self.fraction_used(), 5),
            "proxies_queued": len(self.proxies),
            "proxies_done": len(self.proxies_done),
            "in_contact": self.in_contact(),
            "rate_bytes_per_s": self.rate(),
            "next_window": self.next_window(),
        }

    def _housekeeping_status(self) -> dict[str, Any]:
        hold = self.housekeeping_hold()
        daily = self.housekeeping_bytes_per_day
        return {
            "rate_bytes_per_s": self.housekeeping_bytes_per_s,
            "allocation_mb": None if daily is None else round(daily / 1e6, 3),
            "windowed": self.housekeeping_windowed,
            "held": None if hold is None else {"reason": hold.reason, "until": hold.until},
        }
