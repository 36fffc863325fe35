"""A ground tool's subscription to a node: reconnects on its own and says when it drops.

The monitor, the command sender, the bench and the tests all watch a node the same way:
subscribe to its topics, hand every message on, and, when the broker goes away, retry with
a growing back-off, reporting each change of connection so a screen can say so.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiomqtt

from firmware_host.config import BrokerAddress
from firmware_host.groundlink.sockets import NO_DELAY

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes], Awaitable[None]]
StatusHandler = Callable[[bool, str], None]  # (connected, what happened)
FORGET_WITHIN_S = 3.0  # leaving is not worth a longer wait on an unreachable broker


def broker_client(
    url: str, ca_file: Path | None, identifier: str | None = None, *, clean: bool = True
) -> aiomqtt.Client:
    address = BrokerAddress.parse(url)
    tls_context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    return aiomqtt.Client(
        address.host,
        address.port,
        username=address.username,
        password=address.password,
        identifier=identifier,
        tls_context=tls_context if address.tls else None,
        clean_session=clean,
        timeout=10,
        socket_options=NO_DELAY,
    )


async def forget_session(url: str, client_id: str, ca_file: Path | None = None) -> None:
    """Remove a persistent session from the broker, which would otherwise queue for it forever.

    MQTT 3.1.1 has no other way than connecting once more with a clean session.
    """
    try:
        async with (
            asyncio.timeout(FORGET_WITHIN_S),
            broker_client(url, ca_file, client_id, clean=True),
        ):
            pass
    except (aiomqtt.MqttError, TimeoutError):
        pass  # the broker is away: its own expiry (persistent_client_expiration) applies


def _ignore_status(connected: bool, detail: str) -> None:
    pass


class BrokerLink:
    """Subscribed to `topics` while the broker is reachable; `run()` until cancelled."""

    def __init__(
        self,
        url: str,
        topics: list[str],
        on_message: MessageHandler,
        *,
        ca_file: Path | None = None,
        client_id: str | None = None,
        persistent: bool = False,  # keep the broker-side session (and its queue) across drops
        on_status: StatusHandler = _ignore_status,
        max_backoff_s: float = 2.0,
    ) -> None:
        BrokerAddress.parse(url)  # a bad URL fails here, not in a task nobody awaits yet
        self.url = url
        self.topics = topics
        self.on_message = on_message
        self.on_status = on_status
        self.ca_file = ca_file
        self.client_id = client_id
        self.persistent = persistent
        self.max_backoff_s = max_backoff_s
        self.connected = asyncio.Event()
        self.failed_messages = 0
        self._client: aiomqtt.Client | None = None

    async def run(self) -> None:
        backoff = 0.1
        while True:
            client = broker_client(
                self.url, self.ca_file, self.client_id, clean=not self.persistent
            )
            # A kept session acknowledges a message once it is handled, not as paho reads
            # it: what a drop or a cancel leaves unhandled (in hand, or queued in aiomqtt)
            # the broker sends again when the session is back, rather than never.
            client._client.manual_ack_set(self.persistent)
            detail = "connection closed"
            try:
                async with client:
                    for name in self.topics:
                        await client.subscribe(name, qos=1)
                    self._client = client
                    self.connected.set()
                    self.on_status(True, f"connected to {self.url}")
                    backoff = 0.1
                    async for message in client.messages:
                        if isinstance(message.payload, bytes | bytearray):
                            await self._hand_on(str(message.topic), bytes(message.payload))
                        client._client.ack(message.mid, message.qos)  # no-op unless manual
            except aiomqtt.MqttError as exc:
                detail = str(exc)
            finally:  # also when cancelled: nobody may publish through a closed client
                self._client = None
                self.connected.clear()
            self.on_status(False, f"{detail}; retrying in {backoff:.1f} s")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)

    async def _hand_on(self, topic: str, payload: bytes) -> None:
        """A handler's failure costs that message, never the subscription."""
        try:
            await self.on_message(topic, payload)
        except Exception:
            self.failed_messages += 1
            log.exception("handling a message on %s failed; the subscription goes on", topic)

    async def publish(
        self, topic: str, payload: bytes, *, wait_s: float = 10.0, retain: bool = False
    ) -> None:
        """Publish at QoS 1, waiting up to `wait_s` for the broker to be reachable."""
        try:
            await asyncio.wait_for(self.connected.wait(), wait_s)
        except TimeoutError:
            raise aiomqtt.MqttError(f"not connected to {self.url} after {wait_s:g} s") from None
        assert self._client is not None
        await self._client.publish(topic, payload, qos=1, retain=retain)
