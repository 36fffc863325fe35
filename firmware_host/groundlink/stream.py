"""The ordered, sequence-numbered message stream from the node to the ground.

Every event, telemetry sample and command result is appended here with the next sequence
number and published QoS 1 in order; a message leaves the queue only once the broker has
acknowledged it, so a broker outage delays the stream but does not break it.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import TYPE_CHECKING, Any

import aiomqtt

from protocols import ground

if TYPE_CHECKING:
    from firmware_host.groundlink.mqtt import GroundLink


class Stream:
    def __init__(self, node: str) -> None:
        self.node = node
        self._queue: collections.deque[tuple[str, int, float, dict[str, Any]]] = collections.deque()
        self._seq = 0
        self._wakeup = asyncio.Event()
        self.published = 0

    def append(self, kind: str, body: dict[str, Any]) -> int:
        self._seq += 1
        self._queue.append((kind, self._seq, time.time(), body))
        self._wakeup.set()
        return self._seq

    @property
    def backlog(self) -> int:
        return len(self._queue)

    async def drain(self, client: aiomqtt.Client, link: GroundLink) -> None:
        while True:
            while self._queue:
                kind, seq, ts, body = self._queue[0]
                envelope = ground.Envelope(
                    v=ground.SCHEMA_VERSION,
                    node=self.node,
                    kind=kind,
                    ts=ts,
                    body=body,
                    seq=seq,
                    historical=ts < link.session_started,
                )
                await client.publish(ground.topic(self.node, kind), ground.encode(envelope), qos=1)
                self._queue.popleft()
                self.published += 1
            self._wakeup.clear()
            await self._wakeup.wait()
