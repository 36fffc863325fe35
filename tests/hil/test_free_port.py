"""Ports for test servers (mosquitto, PostgreSQL, the web monitor) are chosen where no
outgoing connection can take them before the server binds: below the kernel's ephemeral
range, which is where port 0 and every client socket get theirs."""

from __future__ import annotations

from hil.broker import ephemeral_ports, free_port


def test_a_free_port_is_below_the_range_outgoing_connections_take_theirs_from() -> None:
    low, high = ephemeral_ports()
    assert low <= high
    ports = [free_port() for _ in range(50)]
    assert all(0 < port < low for port in ports), ports
    assert len(set(ports)) > 1  # chosen afresh each time, not one port for every worker
