"""Draining the outbox to the broker: in order, QoS 1, deleted only once acknowledged.

Messages go out through a sliding window: up to `window` publishes in flight, the next one
sent as soon as any is acknowledged (no waiting for a whole batch), and acknowledged rows
deleted from the outbox together, a few at a time. If the connection breaks, the
unacknowledged rows keep their numbers and go out first on the next connection, flagged
historical if they were queued before that session began. The publishes go to paho directly
(groundlink/sender.py) and the window is kept here by counting PUBACKs; a publish that waits
`ack_timeout_s` for its PUBACK ends the session as aiomqtt's own publish timeout did.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import aiomqtt
import msgspec

from firmware_host.groundlink.outbox import Outbox, Pending
from firmware_host.groundlink.pacing import Pacer
from firmware_host.groundlink.sender import Sender
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
    def __init__(
        self,
        node: str,
        outbox: Outbox,
        pacer: Pacer,
        *,
        window: int = 200,
        ack_timeout_s: float = 10.0,
        opened: bool = True,
    ) -> None:
        """`opened`: the backlog may go from the start; if not, only alarms and command results
        (and what is numbered already, in order) until `open()` is called."""
        self.node = node
        self.outbox = outbox
        self.pacer = pacer
        self.window = window
        self.ack_timeout_s = ack_timeout_s
        self.published = 0
        self.last_seq = 0
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()  # the last look at the outbox found nothing to send
        self.opened = opened  # the whole backlog may go (the node has started)

    def open(self) -> None:
        """The node has started: everything queued may go."""
        self.opened = True
        self._wakeup.set()

    def notify(self, *, urgent: bool = True) -> None:
        """Something was queued; `urgent`: an alarm or a command result, which goes even
        before the stream opens (anything else only wakes an open stream: a shut one would
        look at the outbox for nothing at every event of the start)."""
        self._idle.clear()
        if urgent or self.opened:
            self._wakeup.set()

    async def flush(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for everything queued to be acknowledged; True if it was
        (the stream opens for it if it had not yet)."""
        self.open()
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
        sender: Sender,
        session_started: Callable[[], float],
        reachable: asyncio.Event,
    ) -> None:
        """Publish while the ground is reachable; returns only by raising MqttError (also when
        the oldest publish in flight has waited `ack_timeout_s` for its PUBACK: the session
        is stuck and starts again, resending it)."""
        loop = asyncio.get_running_loop()
        refill_at = max(1, self.window // 4)
        acked: list[Pending] = []
        flying: dict[int, tuple[Pending, float]] = {}  # by message id, oldest first
        refused: list[int] = []
        last_sent = 0  # this connection's: what the broker has not answered yet is skipped

        def on_ack(mid: int, failed: bool) -> None:
            sent = flying.pop(mid, None)
            if sent is None:
                return  # not the stream's (a state, a birth): paho numbers them all
            if failed:
                refused.append(sent[0].seq)
            else:
                acked.append(sent[0])
            if len(acked) >= refill_at or not flying or refused:
                self._wakeup.set()  # worth a look: a refill, a settle, a refusal

        sender.listen(on_ack)
        try:
            while True:
                if len(acked) >= refill_at or not flying:
                    self._settle(acked)  # a quarter window at a time, or all once it is quiet
                if refused:
                    raise aiomqtt.MqttError(f"the broker refused stream message {refused[0]}")
                if not reachable.is_set():
                    await self._until(reachable, flying, loop)
                    continue
                self._wakeup.clear()
                # Refilled a quarter of the window at a time, not one slot at a time: each
                # refill (and each settle, above) is a database transaction.
                room = self.window - len(flying)
                refill = room >= refill_at or not flying
                batch = (
                    self.outbox.next_batch(room, after_seq=last_sent, urgent_only=not self.opened)
                    if refill
                    else []
                )
                if not batch:
                    if not flying and self.opened:
                        self._idle.set()
                    await self._until(self._wakeup, flying, loop)
                    continue
                started = session_started()
                for row in batch:
                    payload = self.payload(row, started)
                    await self._spend(len(payload), flying, loop)
                    mid = sender.publish(ground.topic(self.node, row.kind), payload)
                    flying[mid] = (row, loop.time())
                    last_sent = row.seq
        finally:  # what was acknowledged is never sent again, however the session ends
            self._settle(acked)
            if flying:  # the connection may outlive the drain (a goodbye waits on its death)
                sender.listen(self._late_acks(flying, loop))

    def _late_acks(
        self, flying: dict[int, tuple[Pending, float]], loop: asyncio.AbstractEventLoop
    ) -> Callable[[int, bool], None]:
        """PUBACKs that come after the drain ended, settled a loop turn's worth at a time."""
        late: list[Pending] = []

        def on_ack(mid: int, failed: bool) -> None:
            sent = flying.pop(mid, None)
            if sent is None or failed:
                return
            if not late:
                loop.call_soon(self._settle, late)
            late.append(sent[0])

        return on_ack

    def _ack_deadline(
        self, flying: dict[int, tuple[Pending, float]], loop: asyncio.AbstractEventLoop
    ) -> float | None:
        """When the oldest publish in flight has waited too long for its PUBACK (None: none
        in flight); raises MqttError once that has passed."""
        if not flying:
            return None
        deadline = next(iter(flying.values()))[1] + self.ack_timeout_s
        if loop.time() >= deadline:
            raise self._stuck(flying)
        return deadline

    def _stuck(self, flying: dict[int, tuple[Pending, float]]) -> aiomqtt.MqttError:
        return aiomqtt.MqttError(f"no PUBACK in {self.ack_timeout_s:g} s ({len(flying)} in flight)")

    async def _until(
        self,
        event: asyncio.Event,
        flying: dict[int, tuple[Pending, float]],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        """Wait for `event`, at most a second (the outbox is looked at again) and never past
        the oldest PUBACK's deadline."""
        deadline = self._ack_deadline(flying, loop)
        wait = 1.0 if deadline is None else min(1.0, deadline - loop.time())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):  # not wait_for: it can eat a cancel
                await event.wait()

    async def _spend(
        self, size: int, flying: dict[int, tuple[Pending, float]], loop: asyncio.AbstractEventLoop
    ) -> None:
        """The pacer's leave to send `size` bytes. A paced wait ends the session once the
        oldest publish in flight is past its PUBACK deadline (a stuck link is not hidden
        behind a slow rate or a hold); while PUBACKs keep coming it waits on."""
        while True:
            deadline = self._ack_deadline(flying, loop)
            if deadline is None or self.pacer.rate is None:  # unpaced: spend() does not wait
                await self.pacer.spend(size)
                return
            oldest = next(iter(flying))
            try:
                async with asyncio.timeout_at(deadline):
                    await self.pacer.spend(size)
            except TimeoutError:
                if flying and next(iter(flying)) == oldest:
                    raise self._stuck(flying) from None
                continue  # acknowledged meanwhile: wait on, against the next oldest's deadline
            return

    def _settle(self, acked: list[Pending]) -> None:
        """Delete what the broker acknowledged, in one transaction."""
        if not acked:
            return
        rows = sorted(acked, key=lambda row: row.seq)
        acked.clear()
        self.outbox.acknowledged([row.id for row in rows])
        self.published += len(rows)
        self.last_seq = max(self.last_seq, rows[-1].seq)
