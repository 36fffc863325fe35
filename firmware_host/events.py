"""Events: what happened onboard, with a severity, for the crew, the ground and the log.

Every component reports through one EventBus. Subscribers (the ground link's outbox, the
event store, the log) each get every event; a subscriber that fails is logged and skipped so
one broken consumer never silences the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from protocols.messages.common import Severity

log = logging.getLogger("cupola.events")

_LOG_LEVEL = {
    Severity.DIAGNOSTIC: logging.DEBUG,
    Severity.INFO: logging.INFO,
    Severity.WARNING: logging.WARNING,
    Severity.CRITICAL: logging.CRITICAL,
}


@dataclass(frozen=True)
class Event:
    name: str  # dotted, stable: "device.offline", "take.started", "power.shed"
    severity: Severity
    message: str  # one line a flight controller can act on
    source: str = "daemon"  # device name or component
    data: dict[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "severity": self.severity.name.lower(),
            "message": self.message,
            "source": self.source,
            "data": self.data,
            "ts": self.ts,
        }


Subscriber = Callable[[Event], None]


class EventBus:
    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        """`wall` stamps every event (the daemon's clock)."""
        self.wall = wall
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def emit(
        self,
        name: str,
        severity: Severity,
        message: str,
        *,
        source: str = "daemon",
        **data: Any,
    ) -> Event:
        event = Event(name, severity, message, source, data, self.wall())
        log.log(_LOG_LEVEL[severity], "%s [%s] %s", name, source, message, extra={"event": name})
        for subscriber in self._subscribers:
            try:
                subscriber(event)
            except Exception:
                log.exception("event subscriber %r failed on %s", subscriber, name)
        return event
