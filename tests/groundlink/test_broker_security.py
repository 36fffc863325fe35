"""The shipped broker configuration: TLS, passwords, per-role ACLs, enforced by mosquitto."""

from __future__ import annotations

import asyncio
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


async def _delivered(broker: Mosquitto, ca: Path, publisher: str, topic: str) -> bool:
    """Does a message `publisher` sends on `topic` reach a subscriber allowed to read it?"""
    async with client(broker, "ground-monitor", ca) as watcher:
        await watcher.subscribe("cupola/v1/#", qos=1)
        await asyncio.sleep(0.2)
        async with client(broker, publisher, ca) as sender:
            await sender.publish(topic, b'{"probe": true}', qos=1)
        try:
            async with asyncio.timeout(1.5):
                async for message in watcher.messages:
                    if str(message.topic) == topic:
                        return True
        except TimeoutError:
            return False
    return False


@pytest.mark.parametrize(
    ("publisher", "topic", "allowed"),
    [
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
    ],
)
async def test_acl_per_role(
    secure_ground: Mosquitto, pki: TlsFiles, publisher: str, topic: str, allowed: bool
) -> None:
    assert await _delivered(secure_ground, pki.ca, publisher, topic) is allowed
