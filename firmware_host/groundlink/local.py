"""The crew's copies of events and results, kept until the local broker has them.

The ground's copy of every event goes through the outbox and survives anything. The crew's
copy (local/ topics, on the broker onboard) must not be lost either: an alarm raised while
the daemon's broker session is still connecting, or between a broker restart and the
reconnect, is one the crew has to see when the broker is back, not never. So each copy is
kept, in order, until paho reports its PUBACK; a session that ends takes nothing with it,
and the next one sends whatever was not acknowledged, oldest first. A copy may so arrive
twice (sent, then the session ended before its PUBACK); the monitor shows an event once.

Memory is bounded: past `limit` copies waiting (a long broker outage), the oldest go, are
counted, and the log says how many (they are still in the event log and the ground's
outbox). A copy the broker will not take (over its packet size: it drops the connection
instead of answering) would otherwise end every session at once: a copy that was the oldest
unacknowledged when `GIVE_UP_AFTER` sessions in a row ended within `SUSPECT_WITHIN_S` of
sending it is dropped and logged. A broker that stalls (a session ends on its keepalive,
seconds later) or restarts now and then does not make a copy a suspect.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as paho

from firmware_host.groundlink.paho_client import PahoClient, Sent

log = logging.getLogger(__name__)

LIMIT = 1000  # copies held while the broker is away: a shoot day's alarms many times over
GIVE_UP_AFTER = 3  # sessions that ended with the same oldest copy unacknowledged...
SUSPECT_WITHIN_S = 1.0  # ...each within this long of sending it


@dataclass
class _Copy:
    topic: str
    payload: bytes
    sent: Sent | None = None  # the latest attempt, None while not handed to a session
    sent_at: float = 0.0  # monotonic
    sessions_lost: int = 0  # sessions that ended soon after it, with it unacknowledged


class LocalCopies:
    def __init__(self, limit: int = LIMIT, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._monotonic = monotonic
        self._waiting: deque[_Copy] = deque()
        self._client: PahoClient | None = None
        self.dropped = 0  # over the limit, not yet reported
        self.dropped_total = 0

    @property
    def waiting(self) -> int:
        """Copies not yet acknowledged by the broker (sent or not)."""
        self._forget_acknowledged()
        return len(self._waiting)

    def attach(self, client: PahoClient) -> None:
        """A session is up (`client`: its paho client): everything waiting goes, in order."""
        self._client = client
        self._report_dropped()
        for copy in self._waiting:
            self._send(copy)

    def detach(self) -> None:
        """The session ended: what it did not get acknowledged waits for the next one."""
        self._client = None
        self._forget_acknowledged()
        oldest = self._waiting[0] if self._waiting else None
        if oldest is not None and oldest.sent is not None:
            suspect = self._monotonic() - oldest.sent_at <= SUSPECT_WITHIN_S
            oldest.sessions_lost = oldest.sessions_lost + 1 if suspect else 0
            if oldest.sessions_lost >= GIVE_UP_AFTER:
                self._waiting.popleft()
                self.dropped_total += 1
                log.warning(
                    "a crew copy on %s (%d bytes) was not acknowledged in %d sessions, each of "
                    "which then ended: dropped (the event log and the ground's outbox have it)",
                    oldest.topic, len(oldest.payload), oldest.sessions_lost,
                )  # fmt: skip
        for copy in self._waiting:  # what that session's client said is over with it
            copy.sent = None
        self._report_dropped()

    def publish(self, topic: str, payload: bytes) -> None:
        """QoS 1, not retained; sent now if a session is up, else when the next one starts."""
        self._forget_acknowledged()
        if len(self._waiting) >= self.limit:  # the oldest unacknowledged goes
            self._waiting.popleft()
            self.dropped += 1
            self.dropped_total += 1
        copy = _Copy(topic, payload)
        self._waiting.append(copy)
        if self._client is not None:
            self._send(copy)

    def publish_latest(self, topic: str, payload: bytes) -> None:
        """Retained and latest-wins (the active limits): sent if a session is up, never
        kept; every session publishes the latest as it starts."""
        if self._client is not None:
            self._client.publish(topic, payload, 1, True)

    def _send(self, copy: _Copy) -> None:
        assert self._client is not None
        sent = self._client.publish(copy.topic, copy.payload, 1, False)
        if sent.rc == paho.MQTT_ERR_SUCCESS:
            copy.sent, copy.sent_at = sent, self._monotonic()
        else:  # the connection is going (paho keeps it for this client, which is not reused)
            log.debug("local copy not sent: %s", paho.error_string(sent.rc))
            copy.sent = None

    def _report_dropped(self) -> None:
        if self.dropped:
            log.warning(
                "%d crew copies of events and results were dropped unacknowledged, over %d "
                "waiting (the event log and the ground's outbox have them)",
                self.dropped, self.limit,
            )  # fmt: skip
            self.dropped = 0

    def _forget_acknowledged(self) -> None:
        waiting = self._waiting
        while waiting and (sent := waiting[0].sent) is not None and sent.is_published():
            waiting.popleft()
