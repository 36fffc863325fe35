"""Refusals of unauthenticated messages: counted and summarised, never answered one by one.

Answering each forged or malformed message would let anyone who can publish fill the
result stream (and the disk) and post "rejected" under a real command's id. Instead the
node counts them by reason and says so in one event at most every `period_s`: the first
refusal after a quiet spell at once (an operator with a wrong key learns it quickly), the
rest summed until the period is over.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from firmware_host.events import EventBus
from protocols.messages.common import Severity

REASONS_KEPT = 8  # distinct reasons named per summary; the rest are counted as "other"
REASON_CHARS = 160  # a reason quotes sender-chosen text (a key id): keep it one short line


class RefusalTally:
    def __init__(
        self, bus: EventBus, clock: Callable[[], float], *, period_s: float = 10.0
    ) -> None:
        self.bus = bus
        self.clock = clock
        self.period_s = period_s
        self.total = 0  # since start: every unauthenticated message refused
        self._reasons: Counter[str] = Counter()
        self._since = clock()
        self._next_summary = self._since

    def refuse(self, reason: str) -> None:
        self.total += 1
        reason = reason[:REASON_CHARS]
        if reason in self._reasons or len(self._reasons) < REASONS_KEPT:
            self._reasons[reason] += 1
        else:
            self._reasons["other reasons"] += 1
        self.flush_due()

    def flush_due(self) -> None:
        """Emit the summary if there is one and the period since the last one is over."""
        now = self.clock()
        if not self._reasons or now < self._next_summary:
            return
        count = sum(self._reasons.values())
        span = max(now - self._since, 0.0)
        listed = "; ".join(f"{reason} (x{n})" for reason, n in self._reasons.most_common())
        self.bus.emit(
            "command.refused",
            Severity.WARNING,
            f"refused {count} unauthenticated command message{'s' * (count != 1)} in the "
            f"last {span:.0f} s: {listed}",
            source="command-intake",
            count=count,
            period_s=round(span, 3),
            reasons=dict(self._reasons),
        )
        self._reasons.clear()
        self._since = now
        self._next_summary = now + self.period_s
