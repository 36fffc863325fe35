"""Retained latest-wins messages (device states) handed to paho, at most one per topic
unacknowledged.

A state is worth sending only until the next one: it needs QoS 1 (the broker keeps it and the
bridge forwards it) but not a sender waiting on each PUBACK. aiomqtt's publish waits with an
event, a task and a timer per message and looks through every pending call on each publish,
which for 128 states a round cost more than building them. paho's own publish queues the
message and sends it; paho matches the PUBACK. What is left to us is the bound: while a
topic's previous state is unacknowledged, its next one waits (and, latest wins, is replaced
by a later one), so a slow broker holds at most one state per topic, never a growing queue.
"""

from __future__ import annotations

import aiomqtt
import paho.mqtt.client as paho

from firmware_host.groundlink.paho_client import PahoClient, Sent


class LatestStates:
    def __init__(self, client: PahoClient) -> None:
        """`client`: the session's paho client (aiomqtt's `_client`)."""
        self._client = client
        self._unacknowledged: dict[str, Sent] = {}

    @classmethod
    def of(cls, client: aiomqtt.Client) -> LatestStates:
        return cls(client._client)  # aiomqtt has no publish that does not wait

    def ready(self, topic: str) -> bool:
        """True unless the previous message on `topic` still awaits its PUBACK."""
        sent = self._unacknowledged.get(topic)
        return sent is None or sent.is_published()

    def publish(self, topic: str, payload: bytes) -> None:
        """Retained, QoS 1, without waiting; raises MqttError if paho cannot queue it (the
        connection is gone: the session ends and starts again)."""
        sent = self._client.publish(topic, payload, 1, True)
        if sent.rc != paho.MQTT_ERR_SUCCESS:
            raise aiomqtt.MqttError(f"state not published on {topic}: {paho.error_string(sent.rc)}")
        self._unacknowledged[topic] = sent
