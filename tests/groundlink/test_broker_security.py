"""The shipped broker configuration: TLS, passwords, per-role ACLs, enforced by mosquitto."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from hil.broker import Mosquitto, TlsFiles
from hil.certs import make_test_pki
from tests.groundlink.brokers import NODE, ground_broker

CMD = f"cupola/v1/{NODE}/cmd"
PRIORITY = f"cupola/v1/{NODE}/cmd/priority"


@pytest.fixture
def pki(tmp_path: Path) -> TlsFiles:
    return make_test_pki(tmp_path / "pki")


@pytest.fixture
def secure_ground(tmp_path: Path, pki: TlsFiles) -> Iterator[Mosquitto]:
    with ground_broker(tmp_path, tls=pki) as broker:
        yield broker


def client(
    broker: Mosquitto, user: str | None, ca: Path | None, password: str | None = None
) -> aiomqtt.Client:
    context = ssl.create_default_context(cafile=str(ca) if ca else None)
    return aiomqtt.Client(
        "127.0.0.1", broker.port, username=user,
        password=password if password is not None else (broker.users[user] if user else None),
        tls_context=context, timeout=5,
    )  # fmt: skip


async def test_no_credentials_no_connection(secure_ground: Mosquitto, pki: TlsFiles) -> None:
    with pytest.raises(aiomqtt.MqttError, match=r"[Nn]ot authorized|refused"):
        async with client(secure_ground, None, pki.ca):
            pass
    with pytest.raises(aiomqtt.MqttError, match=r"[Nn]ot authorized|[Bb]ad user name"):
        async with client(secure_ground, "ground-fc", pki.ca, password="guess"):
            pass


async def test_tls_is_required_and_verified(secure_ground: Mosquitto, pki: TlsFiles) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with client(secure_ground, "ground-fc", None):  # the system CAs do not know ours
            pass
    async with client(secure_ground, "ground-fc", pki.ca):
        pass


SENTINEL = f"cupola/v1/{NODE}/event"  # the node may publish here, a monitor may read it

ACL = [  # (publisher, topic, allowed)
    ("ground-fc", CMD, True),
    ("ground-director", CMD, True),
    ("crew-laptop", CMD, True),
    ("ground-monitor", CMD, False),  # a monitor cannot publish a command at all
    ("ground-fc", PRIORITY, True),  # the priority topic: flight controllers only
    ("ground-director", PRIORITY, False),
    ("crew-laptop", PRIORITY, False),
    ("ground-monitor", PRIORITY, False),
    ("iss-film", CMD, False),  # the node cannot command itself
    ("ground-fc", f"cupola/v1/{NODE}/event", False),  # nobody forges the node's stream
    ("iss-film", f"cupola/v1/{NODE}/event", True),
    ("iss-film", "cupola/v1/other-node/event", False),  # a node publishes only its own
    ("bridge-iss-film", f"cupola/v1/{NODE}/telemetry", True),
]


async def _delivered(
    watcher: aiomqtt.Client, node: aiomqtt.Client, sender: aiomqtt.Client, topic: str, n: int
) -> bool:
    """Does probe `n`, sent on `topic`, reach a subscriber allowed to read it?

    No waiting for something that may never come: once the broker has acknowledged the
    probe (it acknowledges a denied one too) it has routed or dropped it, so a sentinel the
    node publishes afterwards reaches the watcher after the probe, if the probe came at all.
    """
    await sender.publish(topic, b'{"probe": %d}' % n, qos=1)
    await node.publish(SENTINEL, b'{"sentinel": %d}' % n, qos=1)
    seen = False
    async for message in watcher.messages:
        body = bytes(message.payload)  # type: ignore[arg-type]
        if body == b'{"probe": %d}' % n and str(message.topic) == topic:
            seen = True
        elif body == b'{"sentinel": %d}' % n:
            return seen
    return seen


async def test_acl_per_role(secure_ground: Mosquitto, pki: TlsFiles) -> None:
    wrong = []
    async with (
        client(secure_ground, "ground-monitor", pki.ca) as watcher,
        client(secure_ground, "iss-film", pki.ca) as node,
    ):
        await watcher.subscribe("cupola/v1/#", qos=1)
        for n, (publisher, topic, allowed) in enumerate(ACL):
            async with client(secure_ground, publisher, pki.ca) as sender:
                if await _delivered(watcher, node, sender, topic, n) is not allowed:
                    wrong.append(f"{publisher} on {topic}: {'refused' if allowed else 'delivered'}")
    assert wrong == []
