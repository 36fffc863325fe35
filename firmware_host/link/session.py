"""Request/response over one link: sequence numbers, timeouts, retries, statistics.

One request is in flight at a time (the line is shared and devices answer in order). A
request that times out is sent again with the same sequence number and the RETRY flag; the
device answers a repeat from its reply cache without acting twice, so a command is executed
at most once and either acknowledged or reported failed.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from firmware_host.link.errors import LinkDown, LinkTimeout
from firmware_host.link.stats import LinkStats
from protocols.catalogue import Command, MsgType, NackReceived, decode_reply, encode_request
from protocols.framing import Frame, Kind

Req = TypeVar("Req")
Rep = TypeVar("Rep")


@dataclass(frozen=True)
class Stamped(Generic[Rep]):
    """A reply with the wall instants bounding the exchange, for timing the device's act."""

    reply: Rep
    sent_at: float  # just before the request's bytes were handed to the port
    received_at: float  # as the reply's bytes were read from the port

    @property
    def round_trip_s(self) -> float:
        return self.received_at - self.sent_at


class RequestSession:
    def __init__(
        self,
        device: str,
        write: Callable[[bytes], None],
        stats: LinkStats,
        *,
        timeout_s: float,
        retries: int,
        on_event: Callable[[Frame], None] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.device = device
        self._write = write
        self.wall = wall
        self.stats = stats
        self.timeout_s = timeout_s
        self.retries = retries
        self.on_event = on_event
        # The loop the session runs on, held: in Python 3.11 asyncio.get_running_loop() makes a
        # getpid system call, and a round trip asked for it twice.
        self._loop = asyncio.get_running_loop()
        self.last_rx = self._loop.time()
        self._seq = random.randrange(0x10000)
        self._lock = asyncio.Lock()
        self._waiting: tuple[int, int, asyncio.Future[Frame]] | None = None
        self._deadline = 0.0  # loop time the awaited reply is due by
        self._timer: asyncio.TimerHandle | None = None
        self._sent_at = 0.0  # wall instant the last request's bytes were handed to the port
        self._reply_read_at = 0.0  # wall instant the awaited reply's bytes were read
        self._last_event_seq: int | None = None
        self._down: LinkDown | None = None
        self.closed = asyncio.Event()  # set once the port has gone away

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFF
        return self._seq

    def call(
        self,
        command: Command[Req, Rep],
        body: Req,
        *,
        timeout_s: float | None = None,
        retries: int | None = None,
    ) -> Coroutine[Any, Any, Rep]:
        """Send one request and return its reply body; NACKs raise NackReceived.

        The exchange's own coroutine, not one awaiting it: a reply resumes its caller through
        every coroutine between them, at every poll of every device."""
        attempts = 1 + (self.retries if retries is None else retries)
        return self._exchange(command, lambda _: body, attempts, timeout_s)

    async def call_stamped(
        self,
        command: Command[Req, Rep],
        body_at: Callable[[float], Req],
        *,
        timeout_s: float | None = None,
    ) -> Stamped[Rep]:
        """One attempt, no retransmission (a retry would time something else), with its body
        built from the wall instant its bytes are written (a jam carries the time of its own
        arrival) and the reply returned with the instants that bound the device's act."""
        reply = await self._exchange(command, body_at, 1, timeout_s)
        return Stamped(reply, self._sent_at, self._reply_read_at)  # set by that exchange

    async def _exchange(
        self,
        command: Command[Req, Rep],
        body_at: Callable[[float], Req],
        attempts: int,
        timeout_s: float | None,
    ) -> Rep:
        timeout = self.timeout_s if timeout_s is None else timeout_s
        loop = self._loop
        lock = self._lock
        await lock.acquire()  # not `async with`: its two coroutines ran at every request
        try:
            if self._down is not None:
                raise self._down
            seq = self._next_seq()
            stats = self.stats
            stats.requests += 1
            for attempt in range(attempts):
                if attempt:
                    stats.retries += 1
                # One future per attempt, expired by the session's timer: a late reply to
                # the previous attempt (same seq) still answers this one.
                future: asyncio.Future[Frame] = loop.create_future()
                self._waiting = (seq, command.code, future)
                self._sent_at = sent_at = self.wall()
                self._write(encode_request(command, body_at(sent_at), seq, retry=attempt > 0))
                sent = loop.time()
                self._expire_at(sent + timeout)
                try:
                    frame = await future
                except _AttemptExpired:
                    frame = None
                if frame is not None:
                    stats.replies += 1
                    stats.record_rtt(loop.time() - sent)
                    try:
                        return decode_reply(frame, command)
                    except NackReceived:
                        stats.nacks += 1
                        raise
                stats.timeouts += 1
            stats.failures += 1
            raise LinkTimeout(self.device, command.code.name, attempts, timeout)
        finally:
            self._waiting = None
            lock.release()

    def _expire_at(self, deadline: float) -> None:
        """Expire the awaited reply at `deadline` (loop time). One timer serves every request:
        a reply almost always comes first, and a timer made and cancelled per request was a
        tenth of the link's CPU; a timer armed for an earlier request's later deadline is
        moved, one for an earlier deadline re-arms itself when it fires."""
        self._deadline = deadline
        timer = self._timer
        if timer is not None and timer.when() <= deadline:
            return
        if timer is not None:
            timer.cancel()
        self._timer = self._loop.call_at(deadline, self._on_timer, deadline)

    def _on_timer(self, armed_for: float) -> None:
        self._timer = None
        waiting = self._waiting
        if waiting is None or waiting[2].done():
            return
        if armed_for >= self._deadline:
            waiting[2].set_exception(_AttemptExpired())
        else:
            self._timer = self._loop.call_at(self._deadline, self._on_timer, self._deadline)

    def on_frame(self, frame: Frame) -> None:
        """Every checked frame from the port lands here."""
        self.last_rx = self._loop.time()
        if frame.kind is Kind.REPLY:
            waiting = self._waiting
            if (
                waiting is not None
                and frame.seq == waiting[0]
                and frame.msg_type in (waiting[1], MsgType.NACK)
                and not waiting[2].done()
            ):
                self._reply_read_at = self.wall()
                waiting[2].set_result(frame)
            else:
                self.stats.unmatched += 1
        elif frame.kind is Kind.EVENT:
            self._count_event(frame.seq)
            if self.on_event is not None:
                self.on_event(frame)

    def _count_event(self, seq: int) -> None:
        self.stats.events += 1
        last = self._last_event_seq
        if last is not None and seq != 0:
            self.stats.events_missed += (seq - last - 1) & 0xFFFF
        self._last_event_seq = seq

    def link_lost(self, exc: Exception | None) -> None:
        """The port went away: fail the waiting request now rather than at its timeout."""
        detail = f"port lost: {exc}" if exc else "port closed"
        self._down = LinkDown(f"{self.device}: {detail}")
        self.closed.set()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiting = self._waiting
        if waiting is not None and not waiting[2].done():
            waiting[2].set_exception(self._down)


class _AttemptExpired(Exception):
    """An attempt's reply did not come within its timeout."""
