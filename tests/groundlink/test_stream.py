"""The stream's sliding window, on virtual time, against a broker that acknowledges when and
how the test says: never more than the window in flight, every message out in order and
deleted only once acknowledged; a refused or never-acknowledged publish ends the session
with the message still queued, and the next session sends it again."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_host.groundlink.outbox import EVENTS, ROUTINE, URGENT, Outbox
from firmware_host.groundlink.pacing import Pacer
from firmware_host.groundlink.stream import StreamPublisher
from tests.virtual_time import run_virtual


class Broker:
    """A Sender whose PUBACKs come `delay(n)` seconds after the n-th publish (None: never),
    refused where `refuse(n)` says so."""

    def __init__(
        self,
        delay: Callable[[int], float | None],
        refuse: Callable[[int], bool] = lambda n: False,
    ) -> None:
        self.delay = delay
        self.refuse = refuse
        self.mids = itertools.count(1)
        self.on_ack: Callable[[int, bool], None] = lambda mid, refused: None
        self.in_flight = 0
        self.most_in_flight = 0
        self.seqs: list[int] = []  # as published
        self.closed = False  # the connection is gone: no PUBACK comes any more

    def listen(self, on_ack: Callable[[int, bool], None]) -> None:
        self.on_ack = on_ack

    def publish(self, topic: str, payload: bytes) -> int:
        mid = next(self.mids)
        n = len(self.seqs)
        self.seqs.append(msgspec.json.decode(payload)["seq"])
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        delay = self.delay(n)
        if delay is not None:
            asyncio.get_running_loop().call_later(delay, self._ack, mid, self.refuse(n))
        return mid

    def _ack(self, mid: int, refused: bool) -> None:
        if self.closed:
            return
        self.in_flight -= 1
        self.on_ack(mid, refused)


def _outbox(tmp_path: Path, count: int) -> Outbox:
    outbox = Outbox(tmp_path / "outbox.db", max_bytes=10**8)
    outbox.append_many("event", [{"n": i} for i in range(count)], EVENTS)
    return outbox


async def _session(stream: StreamPublisher, broker: Broker) -> BaseException | None:
    """One session until everything is acknowledged (None) or the drain ends it."""
    reachable = asyncio.Event()
    reachable.set()
    drain = asyncio.create_task(stream.drain(broker, lambda: 0.0, reachable))
    flushed = asyncio.create_task(stream.flush(3600))
    await asyncio.wait([drain, flushed], return_when=asyncio.FIRST_COMPLETED)
    if drain.done():
        flushed.cancel()
        await asyncio.gather(flushed, return_exceptions=True)
        return drain.exception()
    drain.cancel()
    await asyncio.gather(drain, return_exceptions=True)
    return None


@settings(max_examples=40, deadline=None)
@given(
    window=st.integers(1, 40),
    count=st.integers(0, 150),
    delays=st.lists(st.floats(0.0, 0.5), min_size=1, max_size=50),
)
def test_the_window_is_kept_and_everything_goes_out_once_in_order(
    tmp_path_factory: pytest.TempPathFactory, window: int, count: int, delays: list[float]
) -> None:
    outbox = _outbox(tmp_path_factory.mktemp("stream"), count)
    stream = StreamPublisher("n", outbox, Pacer(), window=window)
    broker = Broker(lambda n: delays[n % len(delays)])  # acks out of order, any time

    assert run_virtual(_session(stream, broker)) is None
    assert broker.seqs == list(range(1, count + 1))  # each once, in order
    assert broker.most_in_flight <= window
    if count >= window:
        assert broker.most_in_flight == window  # and the window is used, not one at a time
    assert outbox.backlog()["messages"] == 0
    assert stream.published == count
    outbox.close()


def test_a_publish_never_acknowledged_ends_the_session_and_goes_out_again(
    tmp_path: Path,
) -> None:
    """Alone again: what was acknowledged before the session ended is not sent again (the
    daemon's window, so the acknowledgements had not reached a settling batch yet)."""
    outbox = _outbox(tmp_path, 10)
    stream = StreamPublisher("n", outbox, Pacer(), window=200, ack_timeout_s=10.0)

    async def main() -> tuple[BaseException | None, float, BaseException | None]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        lost = await _session(stream, Broker(lambda n: None if n == 2 else 0.01))
        took = loop.time() - start
        again = Broker(lambda n: 0.01)
        ended = await _session(stream, again)
        assert again.seqs == [3]  # the unacknowledged one, with its number, and only it
        return lost, took, ended

    lost, took, ended = run_virtual(main())
    assert isinstance(lost, aiomqtt.MqttError)
    assert "no PUBACK in 10 s" in str(lost)
    assert 10.0 <= took <= 11.0  # not before the timeout, and not long after it
    assert ended is None
    assert outbox.backlog()["messages"] == 0


def test_a_slow_broker_is_waited_for(tmp_path: Path) -> None:
    """Acknowledgements 9 s late, one after another, are slow, not lost: no reconnect."""
    outbox = _outbox(tmp_path, 5)
    stream = StreamPublisher("n", outbox, Pacer(), window=1, ack_timeout_s=10.0)
    assert run_virtual(_session(stream, Broker(lambda n: 9.0))) is None
    assert outbox.backlog()["messages"] == 0


def test_a_refused_publish_ends_the_session_and_stays_queued(tmp_path: Path) -> None:
    outbox = _outbox(tmp_path, 6)
    stream = StreamPublisher("n", outbox, Pacer(), window=3)
    again = Broker(lambda n: 0.01)

    async def main() -> tuple[BaseException | None, BaseException | None]:
        refusing = Broker(lambda n: 0.01, refuse=lambda n: n == 4)
        return await _session(stream, refusing), await _session(stream, again)

    refused, ended = run_virtual(main())
    assert isinstance(refused, aiomqtt.MqttError)
    assert "refused stream message 5" in str(refused)
    assert ended is None
    assert again.seqs[0] == 5
    assert outbox.backlog()["messages"] == 0


def test_a_stuck_link_is_noticed_at_the_puback_deadline_even_when_paced(tmp_path: Path) -> None:
    """At a slow paced rate the window never fills; the deadline still holds."""

    async def main() -> tuple[BaseException | None, float]:
        loop = asyncio.get_running_loop()
        outbox = _outbox(tmp_path, 200)
        stream = StreamPublisher(
            "n", outbox, Pacer(400.0, burst_bytes=400, clock=loop.time), window=200,
            ack_timeout_s=10.0,
        )  # fmt: skip
        start = loop.time()
        outcome = await _session(stream, Broker(lambda n: None if n == 0 else 0.01))
        return outcome, loop.time() - start

    outcome, took = run_virtual(main())
    assert isinstance(outcome, aiomqtt.MqttError)
    assert "no PUBACK in 10 s" in str(outcome)
    assert 10.0 <= took <= 11.0


def test_a_hold_with_every_publish_acknowledged_keeps_the_session(tmp_path: Path) -> None:
    """The rate drops to zero mid-batch (a hold) for longer than the PUBACK deadline: the
    publishes in flight were acknowledged, so nothing is stuck and the session stays up."""

    async def main() -> BaseException | None:
        loop = asyncio.get_running_loop()
        pacer = Pacer(400.0, burst_bytes=400, clock=loop.time)
        outbox = _outbox(tmp_path, 100)
        stream = StreamPublisher("n", outbox, pacer, window=200, ack_timeout_s=10.0)
        loop.call_later(3.0, pacer.set_rate, 0)
        loop.call_later(30.0, pacer.set_rate, 400.0)
        return await _session(stream, Broker(lambda n: 0.01))

    assert run_virtual(main()) is None


@settings(max_examples=30, deadline=None)
@given(
    count=st.integers(1, 300),
    delays=st.lists(st.floats(0.0, 0.3), min_size=1, max_size=20),
    cut_at=st.floats(0.0, 1.0),
)
def test_a_session_cut_anywhere_sends_again_only_what_was_not_acknowledged(
    tmp_path_factory: pytest.TempPathFactory, count: int, delays: list[float], cut_at: float
) -> None:
    outbox = _outbox(tmp_path_factory.mktemp("stream"), count)
    stream = StreamPublisher("n", outbox, Pacer(), window=200)
    first = Broker(lambda n: delays[n % len(delays)])
    acked: list[int] = []
    listen = first.listen

    def spy(on_ack: Callable[[int, bool], None]) -> None:
        def counted(mid: int, refused: bool) -> None:
            acked.append(first.seqs[mid - 1])
            on_ack(mid, refused)

        listen(counted)

    first.listen = spy  # type: ignore[method-assign]

    async def main() -> list[int]:
        reachable = asyncio.Event()
        reachable.set()
        drain = asyncio.create_task(stream.drain(first, lambda: 0.0, reachable))
        await asyncio.sleep(cut_at)
        drain.cancel()  # the broker link dropped
        first.closed = True
        await asyncio.gather(drain, return_exceptions=True)
        again = Broker(lambda n: 0.01)
        assert await _session(stream, again) is None
        return again.seqs

    resent = run_virtual(main())
    assert sorted(resent) == sorted(set(range(1, count + 1)) - set(acked))
    assert outbox.backlog()["messages"] == 0
    outbox.close()


def _drain_ended_before_its_pubacks(stream: StreamPublisher, broker: Broker) -> None:
    """All of the outbox out, the drain cancelled before any PUBACK (a goodbye), then every
    PUBACK, a second after its publish, on the connection the drain no longer runs on."""

    async def main() -> None:
        reachable = asyncio.Event()
        reachable.set()
        drain = asyncio.create_task(stream.drain(broker, lambda: 0.0, reachable))
        await asyncio.sleep(0.5)  # on virtual time: all 50 out, none acknowledged yet
        assert broker.in_flight == 50
        drain.cancel()
        await asyncio.gather(drain, return_exceptions=True)
        await asyncio.sleep(1.0)  # the PUBACKs come, after the drain ended

    run_virtual(main())


def test_pubacks_that_come_after_the_drain_ended_are_settled(tmp_path: Path) -> None:
    """A goodbye stops the drain and then waits for the death's PUBACK on the same
    connection: the stream's PUBACKs that come meanwhile still count, and those messages
    are not sent again at the next start."""
    outbox = _outbox(tmp_path, 50)
    stream = StreamPublisher("n", outbox, Pacer(), window=200)
    _drain_ended_before_its_pubacks(stream, Broker(lambda n: 1.0))
    assert outbox.backlog()["messages"] == 0 and stream.published == 50
    outbox.close()


def test_a_refused_puback_after_the_drain_ended_leaves_its_message_queued(tmp_path: Path) -> None:
    """The other side: a late PUBACK that refuses its message does not settle it."""
    outbox = _outbox(tmp_path, 50)
    stream = StreamPublisher("n", outbox, Pacer(), window=200)
    _drain_ended_before_its_pubacks(stream, Broker(lambda n: 1.0, refuse=lambda n: n % 2 == 0))
    assert outbox.backlog()["messages"] == 25 and stream.published == 25
    outbox.close()


def test_a_stream_not_yet_open_sends_only_alarms_and_results_until_it_opens_or_a_flush_asks(
    tmp_path: Path,
) -> None:
    """The daemon opens its stream once its devices have had their first try: a full backlog
    drained at start took the CPU they needed to come online. Both sides: before `open()` only
    alarms and command results go (they go before all else, always); after it, everything, in
    sequence order, each message once; a shutdown's flush does not wait for an opening that
    may never come."""

    async def scenario(opens_by: str) -> tuple[list[int], list[int], int]:
        outbox = Outbox(tmp_path / opens_by / "outbox.db", max_bytes=10**8)
        outbox.append_many("event", [{"n": i} for i in range(20)], EVENTS)
        outbox.append_many("telemetry", [{"n": i} for i in range(20)], ROUTINE)
        stream = StreamPublisher("node", outbox, Pacer(), window=8, opened=False)
        broker = Broker(lambda n: 0.001)
        reachable = asyncio.Event()
        reachable.set()
        drain = asyncio.create_task(stream.drain(broker, lambda: 0.0, reachable))
        await asyncio.sleep(30)
        outbox.append_many("result", [{"n": i} for i in range(3)], URGENT)
        stream.notify()
        await asyncio.sleep(30)
        before = list(broker.seqs)
        if opens_by == "open":
            stream.open()
            await asyncio.sleep(60)
        else:
            assert await stream.flush(60)
        drain.cancel()
        await asyncio.gather(drain, return_exceptions=True)
        return before, broker.seqs, outbox.backlog()["messages"]

    for opens_by in ("open", "flush"):
        (tmp_path / opens_by).mkdir()
        before, after, left = run_virtual(scenario(opens_by))
        assert before == [1, 2, 3]  # the three results, numbered as they went
        assert after == list(range(1, 44)) and left == 0
