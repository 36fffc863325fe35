"""QoS 1 publishes handed straight to paho, each PUBACK reported to one listener.

The stream keeps its own window of publishes in flight and only needs to hear each PUBACK.
aiomqtt's publish awaits every PUBACK with an event, a task and a timer, and looks through
every pending call on each publish: at the daemon's window a bare aiomqtt loop reaches about
half the rate of a bare paho loop (bench/groundlink.py). paho reports each PUBACK through
`on_publish`; this chains onto aiomqtt's handler there, so aiomqtt still hears of its own
publishes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, cast

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.reasoncodes import ReasonCode


class Sender(Protocol):
    def publish(self, topic: str, payload: bytes) -> int:
        """Queue a QoS 1 publish; returns its message id; raises MqttError if it cannot."""
        ...

    def listen(self, on_ack: Callable[[int, bool], None]) -> None:
        """`on_ack(mid, refused)` for every PUBACK from now on; `refused`: the broker said it
        did not take the message (MQTT 5 reason codes; 3.1.1 cannot say so)."""
        ...


_OnPublish = Callable[[paho.Client, Any, int, ReasonCode, Any], None]


def _ignore(mid: int, refused: bool) -> None:
    """No listener yet."""


class PahoSender:
    def __init__(self, client: paho.Client) -> None:
        """`client`: the session's paho client (aiomqtt's `_client`), connected."""
        self._client = client
        self._on_ack: Callable[[int, bool], None] = _ignore
        # aiomqtt's handler, made with paho's version 2 callback signature (as this one)
        aiomqtt_handler = cast(_OnPublish | None, client.on_publish)

        def on_publish(
            client: paho.Client, userdata: Any, mid: int, reason: ReasonCode, properties: Any
        ) -> None:
            if aiomqtt_handler is not None:
                aiomqtt_handler(client, userdata, mid, reason, properties)
            self._on_ack(mid, reason.is_failure)

        client.on_publish = on_publish

    @classmethod
    def of(cls, client: aiomqtt.Client) -> PahoSender:
        return cls(client._client)  # aiomqtt has no publish that does not wait

    def listen(self, on_ack: Callable[[int, bool], None]) -> None:
        self._on_ack = on_ack

    def publish(self, topic: str, payload: bytes) -> int:
        sent = self._client.publish(topic, payload, 1, False)
        if sent.rc != paho.MQTT_ERR_SUCCESS:
            raise aiomqtt.MqttError(f"not published on {topic}: {paho.error_string(sent.rc)}")
        return sent.mid
