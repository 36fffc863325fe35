"""Draining the outbox to the broker: in order, QoS 1, deleted only once acknowledged.

Messages go out in windows: a batch is numbered (outbox), published back to back (paho keeps
up to 100 in flight), and each row is deleted when its PUBACK arrives. If the connection
breaks, the unacknowledged rows keep their numbers and go out first on the next connection,
flagged historical if they were queued before that session began.
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
        while True:
            await reachable.wait()
            self._wakeup.clear()
            batch = self.outbox.next_batch(self.window)
            if not batch:
                self._idle.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), 1.0)
                continue
            started = session_started()
            sends = []
            for row in batch:
                payload = self.payload(row, started)
                await self.pacer.spend(len(payload))
                sends.append(
                    asyncio.ensure_future(
                        client.publish(ground.topic(self.node, row.kind), payload, qos=1)
                    )
                )
            outcomes = await asyncio.gather(*sends, return_exceptions=True)
            acked = [row for row, outcome in zip(batch, outcomes, strict=True) if outcome is None]
            self.outbox.acknowledged([row.id for row in acked])
            self.published += len(acked)
            if acked:
                self.last_seq = acked[-1].seq
            failure = next((o for o in outcomes if isinstance(o, BaseException)), None)
            if failure is not None:
                if isinstance(failure, aiomqtt.MqttError):
                    raise failure
                raise aiomqtt.MqttError(f"publish failed: {failure!r}")
