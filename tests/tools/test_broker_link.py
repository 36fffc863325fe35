"""A ground tool's broker session: kept while it is away, removed when it leaves."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from hil.broker import Mosquitto
from tools.broker_link import BrokerLink, broker_client, forget_session

TOPIC = "cupola/v1/n/event"


async def _received_on_return(broker: Mosquitto, *, forget: bool) -> list[bytes]:
    """What a persistent session finds waiting after being away while 3 messages were sent."""
    got: list[bytes] = []

    async def keep(_: str, payload: bytes) -> None:
        got.append(payload)

    async def visit() -> None:
        link = BrokerLink(broker.url(), [TOPIC], keep, client_id="ground-1", persistent=True)
        task = asyncio.create_task(link.run())
        await asyncio.wait_for(link.connected.wait(), 10)
        await asyncio.sleep(0.5)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert not link.connected.is_set()

    await visit()
    async with broker_client(broker.url(), None, "node") as node:
        for n in range(3):
            await node.publish(TOPIC, f"m{n}".encode(), qos=1)
    if forget:
        await forget_session(broker.url(), "ground-1")
    await visit()
    return got


@pytest.mark.parametrize("forget", [False, True])
async def test_a_session_keeps_what_came_while_away_until_it_is_forgotten(
    broker: Mosquitto, forget: bool
) -> None:
    got = await _received_on_return(broker, forget=forget)
    assert got == ([] if forget else [b"m0", b"m1", b"m2"])


async def test_leaving_when_the_broker_is_unreachable_is_not_an_error() -> None:
    await forget_session("mqtt://127.0.0.1:9", "ground-1")  # nothing listens on port 9


async def test_a_handler_that_fails_costs_one_message_not_the_subscription(
    broker: Mosquitto,
) -> None:
    got: list[bytes] = []
    good_arrived = asyncio.Event()

    async def fragile(_: str, payload: bytes) -> None:
        if payload == b"bad":
            raise RuntimeError("a bug in a handler")
        got.append(payload)
        good_arrived.set()

    link = BrokerLink(broker.url(), [TOPIC], fragile)
    task = asyncio.create_task(link.run())
    try:
        await asyncio.wait_for(link.connected.wait(), 10)
        async with broker_client(broker.url(), None, "node") as node:
            for payload in (b"bad", b"good"):
                await node.publish(TOPIC, payload, qos=1)
        await asyncio.wait_for(good_arrived.wait(), 10)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert got == [b"good"] and link.failed_messages == 1


async def test_a_message_in_hand_when_the_link_is_cancelled_comes_again(
    broker: Mosquitto,
) -> None:
    """A kept session acknowledges what it handled, not what paho read: the message being
    handled when the monitor's link was cancelled, and those queued behind it, come again."""
    got: list[bytes] = []
    in_hand = asyncio.Event()

    async def stuck(_: str, payload: bytes) -> None:
        in_hand.set()
        await asyncio.Event().wait()  # cancelled here, mid-message

    all_three = asyncio.Event()

    async def keep(_: str, payload: bytes) -> None:
        got.append(payload)
        if len(set(got)) == 3:
            all_three.set()

    first = BrokerLink(broker.url(), [TOPIC], stuck, client_id="ground-1", persistent=True)
    task = asyncio.create_task(first.run())
    await asyncio.wait_for(first.connected.wait(), 10)
    async with broker_client(broker.url(), None, "node") as node:
        for n in range(3):
            await node.publish(TOPIC, f"m{n}".encode(), qos=1)
    await asyncio.wait_for(in_hand.wait(), 10)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    again = BrokerLink(broker.url(), [TOPIC], keep, client_id="ground-1", persistent=True)
    task = asyncio.create_task(again.run())
    try:
        await asyncio.wait_for(all_three.wait(), 10)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert sorted(set(got)) == [b"m0", b"m1", b"m2"]
