"""The bulk allocation made real: how many file bytes each contact window may carry.

When a window opens (or the daemon starts inside it) it is granted its share of what is left
of the day's bulk allocation, in proportion to its time among the windows still to come today
(capped by what the link carries in that time). Inside the window bytes are spent at the
grant's even pace (a token bucket, so the window's end is used as well as its start) and
never beyond the grant; outside every window nothing is spent.

The guarantee holds across `kill -9`: before a byte is spent, a mark a little ahead of what
is spent (`reserve_s` of the pace) is saved, and a restarted daemon takes the mark as spent.
At worst the reserve is lost to that window, never spent twice. With no contact schedule the
whole day is one window.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from firmware_host.budget.downlink import DownlinkBudget

DAY = 86400.0


@dataclass
class Grant:
    start: float  # unix time the window (occurrence) opened
    end: float  # and closes
    granted_at: float  # when the grant was made (its pace starts then)
    grant: float  # bytes it may carry
    spent: float = 0.0
    mark: float = 0.0  # saved: spent may reach this before the next save

    @property
    def rate(self) -> float:
        return self.grant / max(self.end - self.granted_at, 1e-9)


class BulkAllocator:
    def __init__(
        self,
        budget: DownlinkBudget,
        *,
        clock: Callable[[], float],
        save: Callable[[dict[str, Any]], None] = lambda _: None,
        saved: dict[str, Any] | None = None,
        burst_s: float = 1.0,
        reserve_s: float = 2.0,
    ) -> None:
        self.budget = budget
        self.clock = clock
        self.save = save
        self.burst_s = burst_s
        self.reserve_s = reserve_s
        self.current: Grant | None = None
        self.history: list[Grant] = []  # grants closed since start (tests, benchmarks)
        self._tokens = 0.0
        self._stamp = clock()
        if saved is not None:
            self._restore(saved)

    # -- the window now --------------------------------------------------------------------

    def _occurrence(self, now: float) -> tuple[float, float] | None:
        """(start, end) of the contact window open at `now`, or None."""
        if not self.budget.windows:
            midnight = now - now % DAY
            return midnight, midnight + DAY
        window = self.budget._window_at(now)
        if window is None:
            return None
        start = now - (now % DAY - window.start_s) % DAY
        return start, start + window.duration_s

    def _link(self) -> float:
        """What the link carries for files: all of it but the housekeeping allocation, so the
        two classes together never ask more of it than it has."""
        housekeeping = self.budget.housekeeping_bytes_per_s or 0.0
        return max(0.0, self.budget.link_bytes_per_s - housekeeping)

    def _share(self, now: float, end: float) -> float:
        """This window's share of what is left today, from `now` to its `end`."""
        left = max(0.0, self.budget.bytes_per_day - self.budget.used_today())
        if not self.budget.windows:
            return min(left, self._link() * (end - now))
        second = now % DAY
        later = sum(w.duration_s for w in self.budget.windows if w.start_s > second)
        remaining = end - now
        share = left * remaining / max(remaining + later, 1e-9)
        return min(share, self._link() * remaining)

    def grant(self) -> Grant | None:
        """The grant of the window open now (made now if it is new), or None."""
        now = self.clock()
        occurrence = self._occurrence(now)
        if occurrence is None:
            self._close()
            return None
        start, end = occurrence
        if self.current is None or self.current.start != start:
            self._close()
            self.current = Grant(start, end, now, self._share(now, end))
            self._tokens = 0.0
            self._stamp = now
            self._persist()
        return self.current

    def _close(self) -> None:
        if self.current is not None:
            self.history.append(self.current)
            self.current = None

    # -- spending --------------------------------------------------------------------------

    def _refill(self, grant: Grant) -> None:
        now = self.clock()
        burst = max(grant.rate * self.burst_s, 1.0)
        self._tokens = min(burst, self._tokens + (now - self._stamp) * grant.rate)
        self._stamp = now

    def try_spend(self, size: int) -> bool:
        """Take `size` bytes of the window's grant now, if its pace and its grant allow."""
        grant = self.grant()
        if grant is None or grant.spent + size > grant.grant:
            return False
        self._refill(grant)
        if self._tokens < min(size, grant.rate * self.burst_s):
            return False
        if grant.spent + size > grant.mark:
            grant.mark = min(grant.grant, grant.spent + size + grant.rate * self.reserve_s)
            self._persist()  # before the bytes go: a crash now cannot spend them twice
        self._tokens -= size
        grant.spent += size
        self.budget.proxies_today += size
        return True

    def wait_s(self, size: int) -> float:
        """How long until `size` bytes may be spent (at least a little; the next window's
        opening when this one cannot carry them)."""
        now = self.clock()
        grant = self.grant()
        if grant is None or grant.spent + size > grant.grant:
            after = grant.end if grant is not None else now
            return max(0.01, self._next_open(after) - now)
        self._refill(grant)
        missing = min(size, grant.rate * self.burst_s) - self._tokens
        return max(0.001, missing / grant.rate if grant.rate > 0 else math.inf)

    def _next_open(self, after: float) -> float:
        if not self.budget.windows:
            return after - after % DAY + DAY
        if self.budget._window_at(after) is not None:
            return after
        return self.budget._next_start(after)

    def rate(self) -> float:
        """Bytes per second the window open now carries (0 outside windows)."""
        grant = self.grant()
        return 0.0 if grant is None or grant.spent >= grant.grant else grant.rate

    # -- surviving a restart ---------------------------------------------------------------

    def _persist(self) -> None:
        grant = self.current
        if grant is None:
            return
        self.save({"start": grant.start, "end": grant.end, "granted_at": grant.granted_at,
                   "grant": grant.grant, "mark": grant.mark,
                   "day_used": self.budget.proxies_today - grant.spent + grant.mark})  # fmt: skip

    def _restore(self, saved: dict[str, Any]) -> None:
        now = self.clock()
        start = float(saved["start"])
        if now // DAY == start // DAY:  # what the day had spent, up to the saved mark
            self.budget.proxies_today = max(self.budget.proxies_today, float(saved["day_used"]))
        occurrence = self._occurrence(now)
        if occurrence is None or occurrence[0] != start:
            return  # another window: its own grant is made when it is used
        mark = float(saved["mark"])
        grant = Grant(start, float(saved["end"]), float(saved["granted_at"]), float(saved["grant"]))
        grant.spent = grant.mark = mark
        self.current = grant

    def status(self) -> dict[str, Any]:
        grant = self.current
        return {
            "rate_bytes_per_s": round(self.rate()),
            "window_grant_bytes": None if grant is None else round(grant.grant),
            "window_spent_bytes": None if grant is None else round(grant.spent),
        }
