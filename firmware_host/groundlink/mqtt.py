"""The MQTT session with the ground: connect, birth, death (Last Will), stream, commands.

The session reconnects by itself, forever, with backoff. On every connect it publishes a
birth certificate with the full state before anything else, then drains the stream in order.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiomqtt

from firmware_host.config import BrokerAddress, MqttConfig
from firmware_host.groundlink.stream import Stream
from protocols import ground

log = logging.getLogger(__name__)

CommandHandler = Callable[[bytes], Awaitable[None]]


class GroundLink:
    def __init__(
        self,
        node: str,
        config: MqttConfig,
        stream: Stream,
        *,
        birth: Callable[[], dict[str, Any]],
        on_command: CommandHandler,
        bd_seq: Callable[[], int],
    ) -> None:
        self.node = node
        self.config = config
        self.address = BrokerAddress.parse(config.url)
        self.stream = stream
        self._birth = birth
        self._on_command = on_command
        self._next_bd_seq = bd_seq
        self._states: dict[str, dict[str, Any]] = {}
        self._dirty: set[str] = set()
        self._state_wakeup = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self.bd_seq = 0
        self.connected = asyncio.Event()
        self.session_started = 0.0  # wall time of the current birth
        self.connects = 0

    # -- what the daemon feeds in ----------------------------------------------------------

    def update_state(self, device: str, snapshot: dict[str, Any]) -> None:
        """Latest-wins retained state; published at most `state_rate_hz` per device."""
        self._states[device] = snapshot
        self._dirty.add(device)
        self._state_wakeup.set()

    # -- session ---------------------------------------------------------------------------

    def _make_client(self) -> aiomqtt.Client:
        address = self.address
        death = ground.Envelope(
            v=ground.SCHEMA_VERSION,
            node=self.node,
            kind=ground.DEATH,
            ts=time.time(),
            body={"reason": "connection lost"},
            bd_seq=self.bd_seq,
        )
        tls_context = None
        if address.tls:
            tls_context = ssl.create_default_context(cafile=self.config.ca_file)
        return aiomqtt.Client(
            address.host,
            address.port,
            username=address.username,
            password=address.password,
            identifier=self.config.client_id or f"cupola-{self.node}",
            will=aiomqtt.Will(
                ground.topic(self.node, ground.DEATH), ground.encode(death), qos=1, retain=True
            ),
            keepalive=self.config.keepalive_s,
            tls_context=tls_context,
            clean_session=False,
            max_inflight_messages=100,
            timeout=10,
        )

    async def run(self) -> None:
        backoff = 0.1
        while True:
            self.bd_seq = self._next_bd_seq()
            try:
                async with self._make_client() as client:
                    self._client = client
                    await self._start_session(client)
                    backoff = 0.1
                    async with asyncio.TaskGroup() as group:
                        group.create_task(self._listen(client))
                        group.create_task(self._publish_states(client))
                        group.create_task(self.stream.drain(client, self))
            except* aiomqtt.MqttError as errors:
                log.warning("ground link down: %s", "; ".join(str(e) for e in errors.exceptions))
            finally:
                self._client = None
                self.connected.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.config.reconnect_max_s)

    async def _start_session(self, client: aiomqtt.Client) -> None:
        await client.subscribe(ground.topic(self.node, ground.COMMAND), qos=1)
        self.session_started = time.time()
        birth = ground.Envelope(
            v=ground.SCHEMA_VERSION,
            node=self.node,
            kind=ground.BIRTH,
            ts=self.session_started,
            body=self._birth(),
            bd_seq=self.bd_seq,
        )
        await client.publish(
            ground.topic(self.node, ground.BIRTH), ground.encode(birth), qos=1, retain=True
        )
        self._dirty = set(self._states)
        self._state_wakeup.set()
        self.connects += 1
        self.connected.set()
        log.info("ground link up (bd_seq %d)", self.bd_seq)

    async def _listen(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload
            if isinstance(payload, bytes | bytearray):
                await self._on_command(bytes(payload))

    async def _publish_states(self, client: aiomqtt.Client) -> None:
        interval = 1.0 / self.config.state_rate_hz
        while True:
            await self._state_wakeup.wait()
            self._state_wakeup.clear()
            dirty, self._dirty = self._dirty, set()
            for device in sorted(dirty):
                envelope = ground.Envelope(
                    v=ground.SCHEMA_VERSION,
                    node=self.node,
                    kind=ground.STATE,
                    ts=time.time(),
                    body=self._states[device],
                )
                await client.publish(
                    ground.topic(self.node, ground.STATE, device),
                    ground.encode(envelope),
                    qos=1,
                    retain=True,
                )
            await asyncio.sleep(interval)

    async def publish_death(self, reason: str) -> None:
        """Clean shutdown: say so, since a clean disconnect does not fire the will."""
        client = self._client
        if client is None:
            return
        death = ground.Envelope(
            v=ground.SCHEMA_VERSION,
            node=self.node,
            kind=ground.DEATH,
            ts=time.time(),
            body={"reason": reason},
            bd_seq=self.bd_seq,
        )
        try:
            await client.publish(
                ground.topic(self.node, ground.DEATH),
                ground.encode(death),
                qos=1,
                retain=True,
                timeout=2,
            )
        except aiomqtt.MqttError as exc:
            log.warning("could not publish death certificate: %s", exc)
