"""Two ground sites: the shipped office bridge feeds a second broker, an archive on each
broker, one database, every seq once; the office's commands reach flight control's broker."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hil.broker import Mosquitto
from protocols import ground
from tests.ground.node_messages import NODE, T0, birth, stream_message
from tests.ground.test_archive_service import DEADLINE_S, archived, running
from tests.groundlink.brokers import ROOT, ground_broker
from tools.archive.service import Archive
from tools.broker_link import broker_client

OFFICE_CONF = ROOT / "tools" / "broker" / "office-bridge.conf"


def office_bridge(flight_control: Mosquitto) -> str:
    """The shipped bridge section, pointed at the test's flight control broker."""
    text = OFFICE_CONF.read_text()
    replacements = {
        "address": f"127.0.0.1:{flight_control.port}",
        "remote_password": flight_control.users["bridge-office"],
        "restart_timeout": "1 1",
        "keepalive_interval": "2",
    }
    lines = []
    for line in text[text.index("connection ") :].splitlines():
        key = line.split(" ", 1)[0]
        if key != "bridge_cafile":
            lines.append(f"{key} {replacements[key]}" if key in replacements else line)
    return "\n".join(lines) + "\n"


async def test_archives_on_two_bridged_brokers_share_one_database(db: str, tmp_path: Path) -> None:
    with ground_broker(tmp_path) as flight_control:
        office = Mosquitto(tmp_path / "office", persistence=True, name="office",
                           extra_config=office_bridge(flight_control))  # fmt: skip
        with office:
            at_fc = Archive(flight_control.url("ground-archive"), db, client_id="archive-fc")
            at_office = Archive(office.url(), db, client_id="archive-office")
            async with running(at_fc), running(at_office):
                async with (
                    broker_client(office.url(), None, "office-probe") as probe,
                    broker_client(flight_control.url("iss-film"), None, "node") as node,
                ):
                    await probe.subscribe(ground.topic(NODE, "birth"), qos=1)
                    await node.publish(ground.topic(NODE, "birth"), birth(42, 1, T0), qos=1,
                                       retain=True)  # fmt: skip
                    # The birth came over: the bridge is up *and* subscribed at flight control
                    # (it says "connected" before its subscriptions are in place, and a stream
                    # message sent in between would never reach the office).
                    async with asyncio.timeout(DEADLINE_S):
                        async for _ in probe.messages:
                            break
                    for seq in range(1, 401):
                        await node.publish(*stream_message(seq, T0 + seq), qos=1)
                assert await archived(db, 400) == list(range(1, 401))
                seen: list[int] = []
                try:
                    async with asyncio.timeout(DEADLINE_S):
                        while True:  # both archives saw every message; the database kept each once
                            seen = [a.writer.written + a.writer.duplicates
                                    for a in (at_fc, at_office) if a.writer]  # fmt: skip
                            # (a reconnection sees the retained birth again: more, never fewer)
                            if len(seen) == 2 and min(seen) >= 401:
                                break
                            await asyncio.sleep(0.05)
                except TimeoutError:
                    raise AssertionError(f"each archive should see 401 messages: {seen}") from None
            # and a command published at the office reaches flight control's broker
            async with broker_client(flight_control.url("iss-film"), None, "node") as node:
                await node.subscribe(ground.topic(NODE, "cmd"), qos=1)
                async with broker_client(office.url(), None, "console") as console:
                    await console.publish(ground.topic(NODE, "cmd"), b"{}", qos=1)
                async with asyncio.timeout(DEADLINE_S):
                    async for message in node.messages:
                        assert message.payload == b"{}"
                        break
