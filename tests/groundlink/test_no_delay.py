"""Every MQTT connection Cupola makes sends small packets at once (TCP_NODELAY), and the
shipped onboard broker does the same: with Nagle's algorithm a command or a result written
just after a PUBACK waited for the peer's delayed acknowledgement, up to 40 ms
(firmware_host/groundlink/sockets.py)."""

from __future__ import annotations

import socket
from pathlib import Path

import aiomqtt

from hil.broker import Mosquitto
from tests.harness import flowing_daemon
from tools.broker_link import broker_client

ONBOARD_CONF = Path(__file__).parents[2] / "firmware_host" / "broker" / "onboard.conf"


def _no_delay(client: aiomqtt.Client) -> bool:
    sock = client._client.socket()
    assert isinstance(sock, socket.socket)
    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


async def test_the_daemons_connection_sends_at_once(tmp_path: Path, broker: Mosquitto) -> None:
    async with flowing_daemon(tmp_path, broker.url()) as daemon:
        client = daemon.ground._client
        assert client is not None
        assert _no_delay(client)


async def test_the_ground_tools_connection_sends_at_once(broker: Mosquitto) -> None:
    async with broker_client(broker.url(), None) as client:
        assert _no_delay(client)


def test_the_onboard_broker_sends_at_once() -> None:
    settings = [line.split() for line in ONBOARD_CONF.read_text().splitlines()]
    assert ["set_tcp_nodelay", "true"] in settings
