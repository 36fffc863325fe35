"""What the publishers that hand QoS 1 messages straight to paho need of its client.

aiomqtt's publish waits for each PUBACK; the states and the crew's copies only need paho to
queue a message and to say later whether its PUBACK came. Structural types, so the tests'
fakes stand in for paho's client."""

from __future__ import annotations

from typing import Protocol


class Sent(Protocol):
    """paho's MQTTMessageInfo, as far as it is used."""

    @property
    def rc(self) -> int: ...

    def is_published(self) -> bool: ...


class PahoClient(Protocol):
    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> Sent: ...
