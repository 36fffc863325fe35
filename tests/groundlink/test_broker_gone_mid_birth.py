"""A broker that goes away while the birth certificate is on its way is noticed at once.

aiomqtt's publish waits for its PUBACK up to the client's timeout (10 s) and does not hear of
a dropped connection; only the session's listener does. A broker that answers the connect
and the subscriptions and then drops the connection on the birth stands in for one that
died at that moment (a real mosquitto acknowledges everything, so it cannot play this)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from firmware_host.config import parse_config
from firmware_host.daemon import Daemon
from protocols import ground
from tests.harness import Credentials, daemon_config, until


async def _packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    kind = (await reader.readexactly(1))[0]
    size, shift = 0, 0
    while True:
        byte = (await reader.readexactly(1))[0]
        size |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return kind, await reader.readexactly(size)


class DropsOnBirth:
    """MQTT 3.1.1, just enough: CONNACK, SUBACK, PUBACK, PINGRESP; a birth ends the link."""

    def __init__(self, bridge_topic: str | None = None) -> None:
        self.bridge_topic = bridge_topic  # subscribed to: the bridge says it is up
        self.dropped = asyncio.Event()
        self.links: set[asyncio.StreamWriter] = set()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.links.add(writer)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                kind, body = await _packet(reader)
                if kind == 0x10:  # CONNECT
                    writer.write(b"\x20\x02\x00\x00")
                elif kind == 0x82:  # SUBSCRIBE: its id, then one QoS 1 grant per filter
                    grants = body[2:].count(b"\x01") or 1
                    writer.write(bytes([0x90, 2 + grants]) + body[:2] + b"\x01" * grants)
                    if self.bridge_topic and self.bridge_topic.encode() in body:
                        topic = self.bridge_topic.encode()
                        state = len(topic).to_bytes(2, "big") + topic + b"1"
                        writer.write(bytes([0x31, len(state)]) + state)  # retained, QoS 0
                elif kind >> 4 == 3:  # PUBLISH
                    length = int.from_bytes(body[:2], "big")
                    topic = body[2 : 2 + length].decode()
                    if topic.endswith("/" + ground.BIRTH):
                        self.dropped.set()
                        break
                    if kind & 0x06:  # QoS 1: acknowledged
                        writer.write(b"\x40\x02" + body[2 + length : 4 + length])
                elif kind == 0xC0:  # PINGREQ
                    writer.write(b"\xd0\x00")
                elif kind == 0xE0:  # DISCONNECT
                    break
                await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def drops_on_birth(bridge_topic: str | None) -> AsyncIterator[tuple[DropsOnBirth, int]]:
    broker = DropsOnBirth(bridge_topic)
    server = await asyncio.start_server(broker.serve, "127.0.0.1", 0)
    try:
        yield broker, server.sockets[0].getsockname()[1]
    finally:  # a client socket left open (a connect cut short) must not hold wait_closed
        server.close()
        for link in broker.links:
            link.close()
        await server.wait_closed()


@pytest.mark.parametrize("bridge_topic", [None, "$SYS/broker/connection/iss-ground/state"])
async def test_a_broker_gone_during_the_birth_ends_the_session_at_once(
    tmp_path: Path, bridge_topic: str | None
) -> None:
    """Direct to the ground, and through an onboard broker's bridge (whose state message
    is what starts the birth)."""
    async with drops_on_birth(bridge_topic) as (broker, port):
        options = {"bridge_state_topic": bridge_topic} if bridge_topic else {}
        daemon = Daemon(parse_config(daemon_config(
            {}, {}, f"mqtt://127.0.0.1:{port}", tmp_path / "state",
            keyring=Credentials(tmp_path).keyring, mqtt_options=options,
        )))  # fmt: skip
        stop = asyncio.Event()
        runner = asyncio.create_task(daemon.run(stop))
        try:
            await asyncio.wait_for(broker.dropped.wait(), 20)
            # well inside aiomqtt's 10 s publish timeout, which is what noticed it before
            await until(lambda: daemon.ground.connects >= 2, "the session starts again", 5.0)
        finally:
            stop.set()
            await runner
