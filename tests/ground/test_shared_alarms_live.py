"""Two monitors on one broker: an alarm shelved in one is shown shelved in the other within a
second, with who and why; an acknowledgement likewise; a monitor started later sees both."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from textual.command import CommandInput, CommandPalette

from hil.broker import Mosquitto
from protocols import ground
from protocols.ground import Role
from tests.ground.node_messages import NODE, birth, telemetry
from tests.harness import Credentials
from tests.tools.test_monitor_app import panel, until
from tools.broker_link import broker_client
from tools.monitor.app import MonitorApp
from tools.monitor.view import NodeView

RED = [{"device": "cam-0", "limit": "camera.temperature", "level": "red"}]
KEY = ("cam-0", "camera.temperature")


async def test_a_shelve_in_one_monitor_shows_in_the_other(
    tmp_path: Path, broker: Mosquitto
) -> None:
    keys = Credentials(tmp_path).keys
    async with broker_client(broker.url(), None, "node") as node:
        now = time.time()  # the monitors judge shelves against their own clock
        await node.publish(ground.topic(NODE, "birth"), birth(1, 1, now, limits=RED), qos=1,
                           retain=True)  # fmt: skip
        await node.publish(ground.topic(NODE, "telemetry"), telemetry(1, now, limits=RED), qos=1)
    one = MonitorApp(NodeView(NODE), url=broker.url(), key=keys[Role.DIRECTOR], client_id="m1")
    two = MonitorApp(NodeView(NODE), url=broker.url(), key=keys[Role.CREW], client_id="m2")
    async with contextlib.AsyncExitStack() as stack:
        p1 = await stack.enter_async_context(one.run_test(size=(200, 48)))
        p2 = await stack.enter_async_context(two.run_test(size=(200, 48)))
        await until(p1, lambda: "RED    NEW" in panel(one, "#alarms"), "the alarm, on one")
        await until(p2, lambda: "RED    NEW" in panel(two, "#alarms"), "the alarm, on two")

        # Shelved from one's palette...
        await p1.press("ctrl+p")
        await until(p1, lambda: isinstance(one.screen, CommandPalette), "the palette")
        one.screen.query_one(CommandInput).value = "shelve 30 lamp swap on set B"
        await p1.pause(0.3)  # the palette searches as it is typed
        shelved_at = asyncio.get_running_loop().time()
        await p1.press("enter")
        # ... shown shelved on two, by the director, with the reason, within a second
        await until(p2, lambda: two.view.shelved(KEY, time.time()) is not None,
                    "the shelve, on two", timeout=5)  # fmt: skip
        took = asyncio.get_running_loop().time() - shelved_at
        assert took < 1.0, f"the other console saw the shelve after {took:.2f} s"
        await until(p2, lambda: "SHELVED" in panel(two, "#alarms"), "drawn", timeout=1)
        assert "shelved by director-1" in panel(two, "#alarms")
        assert "lamp swap on set B" in panel(two, "#alarms")
        assert "alarms 0 unacknowledged" in panel(two, "#node")

        # Acknowledged on two: one sees who did it.
        await p2.press("a")
        await until(p1, lambda: "ack crew-1" in panel(one, "#alarms"), "the ack, on one",
                    timeout=5)  # fmt: skip

    # A third console, started afterwards, finds both (retained).
    three = MonitorApp(NodeView(NODE), url=broker.url(), client_id="m3")
    async with three.run_test(size=(200, 48)) as p3:
        await until(p3, lambda: "SHELVED" in panel(three, "#alarms"), "the shelve, on three")
        alarm = three.view.alarms[KEY]
        assert alarm.acknowledged and alarm.acked_by == "crew-1"
