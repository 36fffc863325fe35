"""A node restarted on a wiped disk numbers its messages from 1 again; the monitor follows."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from pathlib import Path

import pytest

from hil.broker import Mosquitto
from protocols import ground
from tests.harness import DaemonProcess, camera_and_light_bench, until
from tools.broker_link import BrokerLink
from tools.monitor.view import NodeView

pytestmark = pytest.mark.long


async def test_a_node_restarted_on_a_wiped_disk_is_followed(
    tmp_path: Path, broker: Mosquitto
) -> None:
    _, _, config = camera_and_light_bench(
        tmp_path, broker.url(), extra="[telemetry]\ninterval_s = 0.1\n"
    )
    view = NodeView("test-node")

    async def receive(topic: str, payload: bytes) -> None:
        view.absorb(topic, payload, time.time())

    def status(connected: bool, detail: str) -> None:
        view.set_connection(connected, detail, time.time())

    link = BrokerLink(broker.url(), [ground.topic("test-node", "#")], receive, on_status=status)
    watcher = asyncio.create_task(link.run())
    try:
        daemon = DaemonProcess(tmp_path, config).start()
        await until(lambda: view.online and view.sequence.last_seq > 30, "the first numbering")
        before = view.sequence.last_seq
        daemon.kill()
        shutil.rmtree(tmp_path / "state")  # the outbox, the shot log, the counters: all gone
        DaemonProcess(tmp_path, config).start()
        await until(lambda: view.stream_restarts == 1, "the new stream's birth")
        received = view.received
        await until(lambda: view.received > received + 10, "messages on the new numbers")
        assert view.online and view.sequence.last_seq < before
        assert view.sequence.duplicates == 0 and not view.sequence.gaps
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
