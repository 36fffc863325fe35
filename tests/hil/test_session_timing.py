"""The request session's deadlines, on virtual time: a reply that never comes fails the
request exactly at its timeout (per attempt), never earlier, whatever the requests before it
asked for; a reply in time answers; a late reply to a first attempt answers the retry;
requests started together go on the line one at a time, a failed one freeing it.

One timer serves all requests (firmware_host/link/session.py, `_expire_at`), so the cases
that matter are requests with different timeouts one after another."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_host.link.errors import LinkTimeout
from firmware_host.link.session import RequestSession
from firmware_host.link.stats import LinkStats
from protocols.catalogue import PING, encode_reply
from protocols.framing import Deframer, Frame
from protocols.messages.common import Ping
from tests.virtual_time import run_virtual


class Device:
    """Answers each request after `answer_after(n)` seconds (None: never)."""

    def __init__(self, answer_after: Callable[[int], float | None]) -> None:
        self.answer_after = answer_after
        self.requests = 0
        self.written_at: list[float] = []  # loop time of each request
        self.session: RequestSession | None = None
        self.deframer = Deframer()

    def write(self, data: bytes) -> None:
        self.written_at.append(asyncio.get_running_loop().time())
        delay = self.answer_after(self.requests)
        self.requests += 1
        if delay is None:
            return
        for frame in self.deframer.feed(data):
            assert isinstance(frame, Frame)
            reply = encode_reply(PING, Ping(token=0), frame.seq)
            asyncio.get_running_loop().call_later(delay, self._deliver, reply)

    def _deliver(self, data: bytes) -> None:
        assert self.session is not None
        for frame in Deframer().feed(data):
            assert isinstance(frame, Frame)
            self.session.on_frame(frame)


def _session(device: Device, retries: int = 0) -> RequestSession:
    session = RequestSession("d", device.write, LinkStats(), timeout_s=0.5, retries=retries)
    device.session = session
    return session


def _outcomes(delay: float | None, timeout: float) -> set[str]:
    """What may end a request answered after `delay` (None: never) with this timeout: a reply
    due at the very instant of the deadline may win or lose, by the order of the loop's
    timers; what the session promises is that an earlier reply answers and a later one not."""
    if delay is None or delay > timeout:
        return {"timeout"}
    return {"reply"} if delay < timeout else {"reply", "timeout"}


async def _outcome(session: RequestSession, timeout_s: float) -> tuple[str, float]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        await session.call(PING, Ping(token=0), timeout_s=timeout_s)
        return "reply", loop.time() - start
    except LinkTimeout:
        return "timeout", loop.time() - start


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([0.05, 0.2, 0.5, 2.0]), st.none() | st.floats(0.0, 2.5)),
        min_size=1,
        max_size=12,
    )
)
def test_each_request_fails_at_its_own_deadline_and_not_before(
    requests: list[tuple[float, float | None]],
) -> None:
    """(timeout, answer delay or never), one after another: a reply before the deadline
    answers when it comes; otherwise the request fails exactly at its deadline."""

    async def main() -> list[tuple[str, float]]:
        device = Device(lambda n: requests[n][1])
        session = _session(device)
        return [await _outcome(session, timeout) for timeout, _ in requests]

    for (timeout, delay), (outcome, took) in zip(requests, run_virtual(main()), strict=True):
        assert outcome in _outcomes(delay, timeout)
        if delay is not None and delay < timeout:
            assert took == pytest.approx(delay, abs=1e-6)
        else:
            assert took == pytest.approx(timeout, abs=1e-6)


def test_a_short_timeout_after_a_long_one_is_not_stretched() -> None:
    async def main() -> tuple[tuple[str, float], tuple[str, float]]:
        device = Device(lambda n: 0.01 if n == 0 else None)
        session = _session(device)
        first = await _outcome(session, 5.0)  # arms the timer 5 s out
        return first, await _outcome(session, 0.1)

    (first, _), (second, took) = run_virtual(main())
    assert first == "reply"
    assert second == "timeout"
    assert took == pytest.approx(0.1, abs=1e-6)


def test_a_late_reply_to_the_first_attempt_answers_the_retry() -> None:
    async def main() -> tuple[str, float]:
        device = Device(lambda n: 0.7 if n == 0 else None)  # after the first attempt's 0.5 s
        return await _outcome(_session(device, retries=1), 0.5)

    outcome, took = run_virtual(main())
    assert outcome == "reply"
    assert took == pytest.approx(0.7, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.none() | st.floats(0.0, 1.0), min_size=2, max_size=8))
def test_requests_started_together_go_one_at_a_time_and_a_failed_one_frees_the_line(
    delays: list[float | None],
) -> None:
    """Each request is written only once the one before it has ended (answered or timed
    out), at that very instant, and ends as it would alone; after them all the line is free."""

    async def main() -> tuple[list[tuple[str, float]], tuple[str, float], list[float]]:
        loop = asyncio.get_running_loop()
        device = Device(lambda n: delays[n] if n < len(delays) else 0.01)
        session = _session(device)

        async def ended(timeout_s: float) -> tuple[str, float]:
            outcome, _ = await _outcome(session, timeout_s)
            return outcome, loop.time()

        async with asyncio.timeout(60):  # virtual: a line never freed fails, not hangs
            together = await asyncio.gather(*(ended(0.5) for _ in delays))
            return together, await ended(0.5), device.written_at

    together, after, written_at = run_virtual(main())
    assert after[0] == "reply"
    assert len(written_at) == len(delays) + 1
    previous_end = written_at[0]
    for delay, (outcome, end), start in zip(delays, together, written_at, strict=False):
        assert start == pytest.approx(previous_end, abs=1e-6)  # not before, not later
        assert outcome in _outcomes(delay, 0.5)
        answered = delay is not None and delay < 0.5
        assert end - start == pytest.approx(delay if answered else 0.5, abs=1e-6)
        previous_end = end
