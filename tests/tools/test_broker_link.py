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
