"""The simulator's selector: epoll for the descriptors, a timerfd for the deadline.

How close to the deadline its waits end is measured, not tested: `python -m bench.rtt` (paced
round trips against the wire) runs the simulator on it.
"""

from __future__ import annotations

import asyncio
import os
import selectors
import threading
import time
from typing import Any

import pytest

from hil import precise_selector
from hil.precise_selector import PreciseEpollSelector

pytestmark = pytest.mark.skipif(precise_selector._LIBC is None, reason="no timerfd here")


def test_a_wait_ends_no_earlier_than_asked_and_reports_no_timer() -> None:
    """Back to back, so a timerfd left readable (level-triggered) would end the next ones
    at once."""
    selector = PreciseEpollSelector()
    try:
        for timeout in (0.0001, 0.0004, 0.0013):
            started = time.monotonic()
            assert selector.select(timeout) == []  # the timerfd is not a key
            assert time.monotonic() - started >= timeout
    finally:
        selector.close()


def test_ready_descriptors_are_reported_as_the_plain_epoll_selector_reports_them() -> None:
    selector = PreciseEpollSelector()
    read_end, write_end = os.pipe()
    try:
        selector.register(read_end, selectors.EVENT_READ, "reader")
        selector.register(write_end, selectors.EVENT_WRITE, "writer")
        ready = {key.data: events for key, events in selector.select(0.5)}
        assert ready == {"writer": selectors.EVENT_WRITE}
        os.write(write_end, b"x")
        selector.unregister(write_end)
        ready = {key.data: events for key, events in selector.select(0.5)}
        assert ready == {"reader": selectors.EVENT_READ}
    finally:
        selector.close()
        os.close(read_end)
        os.close(write_end)


def test_an_expired_timer_does_not_end_a_wait_without_a_deadline() -> None:
    """Nothing reads the timerfd: were it level-triggered, once expired it would end every
    later wait at once and the loop would spin until the next deadline."""
    selector = PreciseEpollSelector()
    read_end, write_end = os.pipe()
    writer = threading.Timer(0.02, os.write, (write_end, b"x"))
    try:
        selector.register(read_end, selectors.EVENT_READ, "reader")
        assert selector.select(0.0001) == []  # expired
        writer.start()
        ready = selector.select(None)
        assert [key.data for key, _ in ready] == ["reader"]
    finally:
        writer.join()
        selector.close()
        os.close(read_end)
        os.close(write_end)


def test_a_loop_on_it_runs_readers_and_timers_in_order_and_never_early() -> None:
    loop = asyncio.SelectorEventLoop(PreciseEpollSelector())
    late_by: list[float] = []
    order: list[str] = []
    read_end, write_end = os.pipe()

    def fire(name: str, when: float) -> None:
        late_by.append(loop.time() - when)
        order.append(name)

    async def main() -> None:
        now = loop.time()
        for delay in (0.0003, 0.0001, 0.0025, 0.0007):
            loop.call_at(now + delay, fire, f"t{delay}", now + delay)
        got = loop.create_future()
        loop.add_reader(read_end, lambda: got.set_result(os.read(read_end, 8)))
        loop.call_at(now + 0.0015, os.write, write_end, b"ping")
        assert await got == b"ping"
        loop.remove_reader(read_end)
        await asyncio.sleep(0.005)

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
        os.close(read_end)
        os.close(write_end)
    assert order == ["t0.0001", "t0.0003", "t0.0007", "t0.0025"]
    assert min(late_by) > -1e-6  # asyncio runs a timer due within its clock's resolution


def test_without_timerfd_the_simulator_falls_back_to_select(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(precise_selector, "_LIBC", None)
    selector = precise_selector.precise_selector()
    try:
        assert isinstance(selector, selectors.SelectSelector)
    finally:
        selector.close()


def test_a_refused_timerfd_falls_back_to_select(monkeypatch: pytest.MonkeyPatch) -> None:
    assert precise_selector._LIBC is not None
    monkeypatch.setattr(precise_selector._LIBC, "timerfd_create", lambda *_: -1)
    selector = precise_selector.precise_selector()
    try:
        assert isinstance(selector, selectors.SelectSelector)
    finally:
        selector.close()


def test_a_wait_shorter_than_the_spin_bound_is_spun_ends_on_time_and_at_once_when_ready(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Spun, not slept: epoll is only ever asked without blocking; the wait ends no earlier
    than asked, and a ready descriptor ends it at once. A longer wait sleeps as before."""
    asked: list[float | None] = []
    plain = selectors.EpollSelector.select

    def counting(self: selectors.EpollSelector, timeout: float | None = None) -> Any:
        asked.append(timeout)
        return plain(self, timeout)

    monkeypatch.setattr(selectors.EpollSelector, "select", counting)
    selector = PreciseEpollSelector(spin_below_s=0.001)
    read_end, write_end = os.pipe()
    try:
        selector.register(read_end, selectors.EVENT_READ, "reader")
        for timeout in (0.0001, 0.0004, 0.0009):
            started = time.monotonic()
            assert selector.select(timeout) == []
            assert time.monotonic() - started >= timeout
        assert asked and set(asked) == {0}
        os.write(write_end, b"x")
        asked.clear()
        ready = selector.select(0.0009)
        assert [key.data for key, _ in ready] == ["reader"] and asked == [0]
        os.read(read_end, 1)
        asked.clear()
        assert selector.select(0.002) == [] and asked == [0.002]  # over the bound: slept
    finally:
        selector.close()
        os.close(read_end)
        os.close(write_end)
