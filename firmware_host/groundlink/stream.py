"""Draining the outbox to the broker: in order, QoS 1, deleted only once acknowledged.

Messages go out through a sliding window: up to `window` publishes in flight, the next one
sent as soon as any is acknowledged (no waiting for a whole batch), and acknowledged rows
deleted from the outbox together, a few at a time. If the connection breaks, the
unacknowledged rows keep their numbers and go out first on the next connection, flagged
historical if they were queued before that session began.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import aiomqtt
import msgspec

from firmware_host.groundlink.outbox import Outbox, Pending
from firmware_host.groundlink.pacing import Pacer
from protocols import ground


class _StreamEnvelope(msgspec.Struct):
    """ground.Envelope with the body kept as the JSON the outbox stored (not re-parsed)."""

    v: int
    node: str
    kind: str
    ts: float
    seq: int
    historical: bool
    body: msgspec.Raw


_encode = msgspec.json.Encoder().encode


class StreamPublisher:
    def __init__(self, node: str, outbox: Outbox, pacer: Pacer, *, window: int = 200) -> None:
        self.node = node
        self.outbox = outbox
        self.pacer = pacer
        self.window = window
        self.published = 0
        self.last_seq = 0
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()  # the last look at the outbox found nothing to send

    def notify(self) -> None:
        """Something was queued."""
        self._idle.clear()
        self._wakeup.set()

    async def flush(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for everything queued to be acknowledged; True if it was."""
        self.notify()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    def payload(self, row: Pending, session_started: float) -> bytes:
        return _encode(
            _StreamEnvelope(
                v=ground.SCHEMA_VERSION,
                node=self.node,
                kind=row.kind,
                ts=row.created,
                seq=row.seq,
                historical=row.created < session_started,
                body=msgspec.Raw(row.body),
            )
        )

    async def drain(
        self,
        client: aiomqtt.Client,
        session_started: Callable[[], float],
        reachable: asyncio.Event,
    ) -> None:
        """Publish while the ground is reachable; returns only by raising MqttError."""
        slots = asyncio.Semaphore(self.window)
        acked: list[Pending] = []
        in_flight = 0
        last_sent = 0  # this connection's: what the broker has not answered yet is skipped
        failures: list[BaseException] = []

        async def publish(row: Pending, payload: bytes) -> None:
            nonlocal in_flight
            try:
                await client.publish(ground.topic(self.node, row.kind), payload, qos=1)
                acked.append(row)
            except Exception as exc:
                failures.append(exc)  # raised from the drain itself, below
            finally:
                in_flight -= 1
                slots.release()
                self._wakeup.set()  # a slot is free, an acknowledgement to settle

        async with asyncio.TaskGroup() as group:
            while True:
                self._settle(acked)
                if failures:
                    failure = failures[0]
                    if isinstance(failure, aiomqtt.MqttError):
                        raise failure
                    raise aiomqtt.MqttError(f"publish failed: {failure!r}")
                await reachable.wait()
                self._wakeup.clear()
                room = self.window - in_flight
                batch = self.outbox.next_batch(room, after_seq=last_sent) if room else []
                if not batch:
                    if in_flight == 0:
                        self._idle.set()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wakeup.wait(), 1.0)
                    continue
                started = session_started()
                for row in batch:
                    payload = self.payload(row, started)
                    await self.pacer.spend(len(payload))
                    await slots.acquire()
                    in_flight += 1
                    last_sent = row.seq
                    group.create_task(publish(row, payload))

    def _settle(self, acked: list[Pending]) -> None:
        """Delete what the broker acknowledged, in one transaction."""
        if not acked:
            return
        rows = sorted(acked, key=lambda row: row.seq)
        acked.clear()
        self.outbox.acknowledged([row.id for row in rows])
        self.published += len(rows)
        self.last_seq = max(self.last_seq, rows[-1].seq)
