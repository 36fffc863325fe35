"""The pacer: nothing at rate zero, no credit carried over a start or a hold, debts paid."""

from __future__ import annotations

import asyncio

from firmware_host.groundlink.pacing import Pacer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def passes(pacer: Pacer, size: int) -> bool:
    """Whether `size` bytes are granted without waiting for time to pass."""
    task = asyncio.ensure_future(pacer.spend(size))
    for _ in range(3):
        await asyncio.sleep(0)
    if task.done():
        return True
    task.cancel()
    return False


async def test_nothing_passes_at_rate_zero_from_the_start() -> None:
    pacer = Pacer(0.0)  # a held start
    assert not await passes(pacer, 1000)  # the bucket used to start full: 64 kB at rate 0
    assert pacer.spent == 0


async def test_no_credit_saved_in_a_window_is_spent_during_a_hold() -> None:
    clock = Clock()
    pacer = Pacer(1000.0, clock=clock)
    clock.now += 100  # a quiet window: the bucket fills
    pacer.set_rate(0.0)  # the window ends
    assert not await passes(pacer, 1000)


async def test_a_paced_stream_sends_what_its_rate_allows_and_no_more() -> None:
    clock = Clock()
    pacer = Pacer(1000.0, clock=clock)
    clock.now += 2.0
    assert await passes(pacer, 2000)
    assert not await passes(pacer, 100)


async def test_unpaced_messages_are_charged_and_the_stream_pays_them_back() -> None:
    clock = Clock()
    pacer = Pacer(1000.0, clock=clock)
    pacer.charge(5000)  # a birth
    assert pacer.spent == 5000
    clock.now += 4.0
    assert not await passes(pacer, 100)
    clock.now += 1.2
    assert await passes(pacer, 100)


async def test_device_states_take_only_credit_the_stream_is_not_waiting_for() -> None:
    clock = Clock()
    pacer = Pacer(1000.0, clock=clock)
    waiting = asyncio.ensure_future(pacer.spend(2000))  # the stream: an alarm, say
    await asyncio.sleep(0)
    clock.now += 1.5
    assert not pacer.try_spend(500)  # 1.5 kB of credit, but the stream waits for it
    clock.now += 1.0
    pacer.set_rate(1000.0)  # wakes the stream, which takes its 2 kB
    await waiting  # 2.5 kB earned, 2 kB taken
    assert pacer.try_spend(500)
    assert not pacer.try_spend(1)  # no credit left


async def test_no_state_goes_out_at_rate_zero_and_every_one_when_unpaced() -> None:
    held, unpaced = Pacer(0.0, clock=Clock()), Pacer(None, clock=Clock())
    assert not held.try_spend(1)
    assert unpaced.try_spend(10**6) and unpaced.spent == 10**6
