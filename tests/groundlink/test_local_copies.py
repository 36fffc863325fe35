"""The crew's local copies of events go out one aiomqtt call each: a burst of them (a whole
bench coming online) is published without aiomqtt warning of a backlog in the daemon's log."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from hil.broker import Mosquitto
from protocols.messages.common import Severity
from tests.harness import flowing_daemon, until


async def test_a_burst_of_local_copies_is_not_reported_as_a_backlog(
    tmp_path: Path, broker: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    async with flowing_daemon(tmp_path, broker.url()) as daemon:
        with caplog.at_level(logging.WARNING):
            for number in range(100):  # in one turn, as 64 devices coming online
                daemon.bus.emit("test.burst", Severity.INFO, f"burst {number}")
            await until(lambda: daemon.stream.published >= 100, "the burst delivered")
    assert not [r for r in caplog.records if "pending publish calls" in r.getMessage()]
