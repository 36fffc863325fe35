"""The crew's local copies of events go out one aiomqtt call each: a burst of them (a whole
bench coming online) is published without aiomqtt warning of a backlog in the daemon's log."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from firmware_host.config import parse_config
from firmware_host.daemon import Daemon
from hil.broker import Mosquitto
from protocols.messages.common import Severity
from tests.harness import Credentials, daemon_config, until


async def test_a_burst_of_local_copies_is_not_reported_as_a_backlog(
    tmp_path: Path, broker: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    credentials = Credentials(tmp_path)
    toml = daemon_config({}, {}, broker.url(), tmp_path / "state", keyring=credentials.keyring)
    daemon = Daemon(parse_config(toml))
    stop = asyncio.Event()
    runner = asyncio.create_task(daemon.run(stop))
    try:
        await until(daemon.ground.flowing.is_set, "the stream to the ground flows")
        with caplog.at_level(logging.WARNING):
            for number in range(100):  # in one turn, as 64 devices coming online
                daemon.bus.emit("test.burst", Severity.INFO, f"burst {number}")
            await until(lambda: daemon.stream.published >= 100, "the burst delivered")
    finally:
        stop.set()
        await runner
    assert not [r for r in caplog.records if "pending" in r.getMessage()]
