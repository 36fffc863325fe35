"""Two monitors on one live node that enforces command authority: both see who holds it, the
console without it is refused by the node, and a hand-over moves it from one to the other."""

from __future__ import annotations

import contextlib
from pathlib import Path

from hil.broker import Mosquitto
from protocols.ground import Role
from tests.harness import DaemonProcess, camera_and_light_bench
from tests.tools.test_monitor_app import panel, until
from tools.monitor.app import MonitorApp
from tools.monitor.view import CommandLine, NodeView


def last(view: NodeView, name: str) -> CommandLine | None:
    """This console's latest `name` command, once answered."""
    answered = [c for c in view.commands.values()
                if c.own and c.name == name and c.status != "sent"]  # fmt: skip
    return answered[-1] if answered else None


async def test_a_hand_over_between_two_consoles(tmp_path: Path, broker: Mosquitto) -> None:
    _, credentials, config = camera_and_light_bench(
        tmp_path, broker.url(), auth_options={"authority": "node"}
    )
    DaemonProcess(tmp_path, config).start()
    director, crew = credentials.keys[Role.DIRECTOR], credentials.keys[Role.CREW]
    one = MonitorApp(NodeView("test-node"), url=broker.url(), key=director, client_id="m-one")
    two = MonitorApp(NodeView("test-node"), url=broker.url(), key=crew, client_id="m-two")
    async with contextlib.AsyncExitStack() as stack:
        p1 = await stack.enter_async_context(one.run_test(size=(200, 48)))
        p2 = await stack.enter_async_context(two.run_test(size=(200, 48)))
        for app, pilot in ((one, p1), (two, p2)):
            await until(pilot, lambda app=app: "authority: nobody" in panel(app, "#node"),
                        "nobody holds authority, on both screens")  # fmt: skip

        await one.send_command("authority.claim", {})
        for app, pilot in ((one, p1), (two, p2)):
            await until(pilot, lambda app=app: "authority: director-1" in panel(app, "#node"),
                        "the director's console holds it, on both screens")  # fmt: skip

        # The crew's console is read-only: the node refuses its command and says who holds it.
        await two.send_command("light.set", {"device": "key", "intensity_pct": 40})
        await until(p2, lambda: last(two.view, "light.set") is not None, "the refusal")
        refused = last(two.view, "light.set")
        assert refused is not None and refused.status == "rejected"
        assert "held by 'director-1'" in refused.reason

        # Request, accept: the crew's console commands, the director's is refused.
        await two.send_command("authority.request", {"note": "lighting change"})
        await until(p1, lambda: any(e.name == "authority.requested" for e in one.view.events),
                    "the request, on the holder's screen")  # fmt: skip
        await one.send_command("authority.accept", {"key_id": "crew-1"})
        for app, pilot in ((one, p1), (two, p2)):
            await until(pilot, lambda app=app: "authority: crew-1" in panel(app, "#node"),
                        "the crew's console holds it, on both screens")  # fmt: skip
        await two.send_command("light.set", {"device": "key", "intensity_pct": 40})
        await until(p2, lambda: (last(two.view, "light.set") or refused).status == "ok",
                    "the crew's command executed")  # fmt: skip
        await one.send_command("light.set", {"device": "key", "intensity_pct": 10})
        await until(p1, lambda: last(one.view, "light.set") is not None, "the refusal")
        mine = last(one.view, "light.set")
        assert mine is not None and mine.status == "rejected"
        assert "held by 'crew-1'" in mine.reason
