"""The monitor's screen, driven by a real daemon and simulators through a real mosquitto."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.text import Text
from textual.command import CommandInput, CommandPalette
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static
from textual.widgets.data_table import RowDoesNotExist

from hil.broker import Mosquitto
from tests.harness import (
    Credentials,
    DaemonProcess,
    camera_and_light_bench,
)
from tools.ground_client import GroundSession
from tools.monitor.app import REDRAW_S, ConfirmHazardous, MonitorApp
from tools.monitor.replay import load_capture
from tools.monitor.view import NodeView

# The simulated camera sits at about 22 °C: with these limits it is in the red at once.
EXTRA = """
[limits]
camera_temperature_c = { yellow = 20.0, red = 21.0 }

[telemetry]
interval_s = 0.5
"""


async def until(
    pilot: Pilot[None], check: Callable[[], bool], what: str, timeout: float = 20
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for: {what}")
        await pilot.pause(0.1)


def cell(app: MonitorApp, table: str, row: str, column: int) -> str:
    """The text of one cell as drawn ("" until the row is drawn)."""
    try:
        value = app.query_one(table, DataTable).get_row(row)[column]
    except RowDoesNotExist:
        return ""
    return value.plain if isinstance(value, Text) else str(value)


def panel(app: MonitorApp, selector: str) -> str:
    content = app.query_one(selector, Static).content
    return content.plain if isinstance(content, Text) else str(content)


async def test_the_screen_follows_a_live_node(tmp_path: Path, broker: Mosquitto) -> None:
    _, credentials, config = camera_and_light_bench(
        tmp_path, broker.url(), mqtt_options={"keepalive_s": 2}, extra=EXTRA
    )
    # The monitor joins after the red limit event went by: the node's telemetry lists it.
    async with GroundSession(broker.url(), "test-node") as early:
        daemon = DaemonProcess(tmp_path, config).start()
        red = "limit.camera.temperature.red"
        await early.wait_for(lambda: red in early.event_names(), 20, "the red limit event")
    view = NodeView("test-node")
    app = MonitorApp(view, url=broker.url(), key=credentials.flight, client_id="monitor-under-test")
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: view.online and "cam-a" in view.devices, "node online")
        await until(pilot, lambda: "standby" in cell(app, "#devices", "cam-a", 2), "cam-a standby")
        # The camera's settings, as the node read them back, under the table.
        await until(pilot, lambda: "cam-a" in panel(app, "#cameras"), "cam-a's settings")
        assert "ISO " in panel(app, "#cameras") and " K · " in panel(app, "#cameras")

        # A red limit alarm appears, stays, and is acknowledged with a key.
        await until(
            pilot, lambda: "RED    NEW" in panel(app, "#alarms"), "a red alarm on the screen"
        )
        assert "cam-a camera.temperature" in panel(app, "#alarms")
        # ... and the event itself, from the node's event log, fills in the day.
        await until(pilot, lambda: red in [e.name for e in view.events], "the earlier event")
        await pilot.press("a")
        await pilot.pause(0.1)
        assert "RED    ack" in panel(app, "#alarms") and not view.unacknowledged()

        # A camera starting to record, commanded through the palette (scene 7 is text, as the
        # node's birth says; take 1 a number).
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
        app.screen.query_one(CommandInput).value = "record scene=7 take=1"
        await pilot.pause(2 * REDRAW_S)  # the screen behind the palette redraws meanwhile
        await pilot.press("enter")
        await until(
            pilot, lambda: "recording" in cell(app, "#devices", "cam-a", 2), "cam-a recording"
        )
        assert cell(app, "#devices", "cam-a", 4) == "7/1 REC"
        await until(pilot, lambda: app.view.takes_since(0), "the take in the shot log")

        # A hazardous command asks for its second confirmation here, then executes.
        await app.send_command("power.cap.set", {"cap_w": 400, "reason": "test"})
        await until(pilot, lambda: isinstance(app.screen, ConfirmHazardous), "the confirmation")
        await pilot.press("y")
        await until(
            pilot,
            lambda: any(c.name == "confirm" and c.status == "ok" for c in view.commands.values()),
            "the confirmed command's result",
        )
        await until(pilot, lambda: view.power.get("cap_w") == 400, "the new cap on screen")

        # The monitor's own link drops while the node keeps publishing: its session on the
        # broker keeps what was sent meanwhile, so nothing is lost...
        app.workers.cancel_group(app, "broker")
        async with GroundSession(broker.url(), "test-node", key=credentials.flight) as gs:
            await gs.command("status")
            await gs.wait_for(lambda: gs.sequence.last_seq > 0, 10, "the stream, seen meanwhile")
            sent_away = gs.sequence.last_seq
        app.start_link()
        await until(pilot, lambda: view.sequence.last_seq >= sent_away, "what was sent away")
        assert not view.sequence.gaps
        # ... unless the session itself is lost (expired on the broker): a gap, counted.
        app.workers.cancel_group(app, "broker")
        async with GroundSession(broker.url(), "test-node", key=credentials.flight) as gs:
            await gs.command("status")
        app.client_id += "-anew"
        app.start_link()
        await until(pilot, lambda: bool(view.sequence.gaps), "a sequence gap")
        shown = f"gaps {len(view.sequence.gaps)} ({view.sequence.missing()} lost)"
        await until(pilot, lambda: shown in panel(app, "#node"), "the gap on the screen")

        # The node dies without a word: the broker's Last Will shows it offline.
        daemon.kill()
        await until(pilot, lambda: "OFFLINE" in panel(app, "#node"), "the node offline")


@pytest.mark.parametrize("typed", ["record take", "record take=1", "record scene=7 take=1 x=2"])
async def test_the_palette_refuses_malformed_arguments_without_sending(
    tmp_path: Path, typed: str
) -> None:
    view = NodeView("bench-node")
    last = load_capture(Path(__file__).parent / "captures" / "nominal.jsonl", view)
    key = Credentials(tmp_path).flight
    app = MonitorApp(view, key=key, clock=lambda: last)
    async with app.run_test(size=(160, 48)) as pilot:
        assert "record" in app.command_names()
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
        app.screen.query_one(CommandInput).value = typed
        await pilot.pause(2 * REDRAW_S)  # the screen behind the palette redraws meanwhile
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert not [c for c in view.commands.values() if c.own]  # nothing signed, nothing sent


def add_events(view: NodeView, at: float, *messages: str) -> None:
    for n, message in enumerate(messages, start=view.sequence.last_seq + 1):
        body = {"name": "x.y", "severity": "warning", "message": message, "source": "cam-a",
                "data": {}, "ts": at}  # fmt: skip
        envelope = {"v": 1, "node": "bench-node", "kind": "event", "ts": at, "seq": n,
                    "body": body}  # fmt: skip
        view.absorb("cupola/v1/bench-node/event", json.dumps(envelope).encode(), at)


async def test_a_reader_keeps_the_event_they_are_on_while_newer_ones_arrive() -> None:
    view = NodeView("bench-node")
    last = load_capture(Path(__file__).parent / "captures" / "nominal.jsonl", view)
    app = MonitorApp(view, clock=lambda: last)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(2 * REDRAW_S)
        table = app.query_one("#event-table", DataTable)
        table.focus()
        await pilot.press("down", "down", "down")
        reading = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        add_events(view, last, "newer", "newer still")
        await pilot.pause(2 * REDRAW_S)
        assert table.cursor_row == 5
        assert table.coordinate_to_cell_key(table.cursor_coordinate).row_key == reading
        await pilot.press(*["up"] * 5)
        add_events(view, last, "newest")
        await pilot.pause(2 * REDRAW_S)
        assert table.cursor_row == 0 and table.get_row_at(0)[4].plain == "newest"


async def test_text_from_the_node_is_shown_as_sent_never_as_markup() -> None:
    view = NodeView("bench-node")
    last = load_capture(Path(__file__).parent / "captures" / "nominal.jsonl", view)
    nasty = ["[/oops] closing a tag never opened", "tripped [2]", "[bold]loud[/bold]", "[a=b|c]"]
    add_events(view, last, *nasty)
    app = MonitorApp(view, clock=lambda: last)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(2 * REDRAW_S)
        table = app.query_one("#event-table", DataTable)
        shown = [table.get_row_at(row)[4].plain for row in range(len(nasty))]
        assert shown == list(reversed(nasty))


async def test_a_command_aged_out_of_the_view_unanswered_is_let_go() -> None:
    view = NodeView("bench-node")
    last = load_capture(Path(__file__).parent / "captures" / "nominal.jsonl", view)
    app = MonitorApp(view, clock=lambda: last)
    async with app.run_test(size=(160, 48)):
        app._pending.add("sent-long-ago")  # the view keeps only the latest commands
        envelope = {"v": 1, "node": "bench-node", "kind": "event", "ts": last,
                    "seq": view.sequence.last_seq + 1,
                    "body": {"name": "x.y", "severity": "info", "message": "after",
                             "source": "cam-a", "data": {}, "ts": last}}  # fmt: skip
        await app._receive("cupola/v1/bench-node/event", json.dumps(envelope).encode())
        assert not app._pending and view.events[-1].message == "after"


async def test_a_second_console_sees_who_armed_what_and_may_confirm_it(tmp_path: Path) -> None:
    view = NodeView("bench-node")
    last = load_capture(Path(__file__).parent / "captures" / "nominal.jsonl", view)
    armed = {"id": "armed-by-fc1", "name": "camera.format", "status": "armed",
             "reason": "hazardous: send confirm with arm_id armed-by-fc1 within 60 s",
             "result": {"arm_id": "armed-by-fc1", "window_s": 60, "armed_by": "fc-1",
                        "two_person": "key"},
             "key_id": "fc-1", "role": "flight_controller"}  # fmt: skip
    envelope = {"v": 1, "node": "bench-node", "kind": "result", "ts": last,
                "seq": view.sequence.last_seq + 1, "body": armed}  # fmt: skip
    view.absorb("cupola/v1/bench-node/result", json.dumps(envelope).encode(), last)
    app = MonitorApp(view, key=Credentials(tmp_path).flight, clock=lambda: last)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("c")
        await pilot.pause(2 * REDRAW_S)
        assert cell(app, "#command-table", "armed-by-fc1", 1) == "fc-1"
        assert cell(app, "#command-table", "armed-by-fc1", 4) == "armed by fc-1"
        table = app.query_one("#command-table", DataTable)
        table.focus()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmHazardous), "the confirmation")
        question = app.screen.question  # type: ignore[attr-defined]
        assert "camera.format (sent by fc-1) is armed by fc-1" in question


async def test_a_held_stream_shows_held_until_its_window_never_online() -> None:
    view = NodeView("bench-node")
    last = load_capture(Path(__file__).parent / "captures" / "nominal.jsonl", view)
    backlog = {"messages": 50, "bytes": 41_000, "events": 12, "samples": 38, "thinned": 0}
    body = {"state": "held", "reason": "contact schedule", "until": last + 3600, "at": last,
            "backlog": backlog, "limits": []}  # fmt: skip
    envelope = {"v": 1, "node": "bench-node", "kind": "link", "ts": last, "body": body,
                "bd_seq": view.birth_bd_seq}  # fmt: skip
    view.absorb("cupola/v1/bench-node/link", json.dumps(envelope).encode(), last)
    app = MonitorApp(view, clock=lambda: last + 60)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(2 * REDRAW_S)
        node = panel(app, "#node")
        assert "HELD until" in node and "(contact schedule)" in node and "ONLINE" not in node
        assert "outbox 50 waiting" in panel(app, "#data")


PYSERIAL_REASON = (
    "device reports readiness to read but returned no data "
    "(device disconnected or multiple access on port?)"
)


def set_device(view: NodeView, at: float, name: str, **changes: object) -> None:
    """The node's next state message for one device, as the view receives it."""
    body = {**view.devices[name], **changes}
    envelope = {"v": 1, "node": view.node, "kind": "state", "ts": at, "body": body}
    view.absorb(f"cupola/v1/{view.node}/state/{name}", json.dumps(envelope).encode(), at)


def column_widths(app: MonitorApp) -> list[int]:
    table = app.query_one("#devices", DataTable)
    return [column.get_render_width(table) for column in table.columns.values()]


async def test_a_long_offline_reason_keeps_every_column_on_screen_and_goes_with_it() -> None:
    view = NodeView("bench-node")
    last = load_capture(Path(__file__).parent / "captures" / "nominal.jsonl", view)
    online = dict(view.devices["cam-a"])
    app = MonitorApp(view, clock=lambda: last)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        before = column_widths(app)
        screen_width = app.query_one("#devices", DataTable).size.width

        set_device(view, last, "cam-a", online=False, offline_reason=PYSERIAL_REASON)
        app.redraw()
        await pilot.pause()
        state = cell(app, "#devices", "cam-a", 2)
        assert state.startswith("OFFLINE: device reports") and state.endswith("…")
        assert sum(column_widths(app)) <= screen_width  # media .. age all still on screen
        assert cell(app, "#devices", "cam-b", 10)  # the age column is still drawn

        set_device(view, last, "cam-a", **online)
        app.redraw()
        await pilot.pause()
        assert column_widths(app) == before  # the layout recovers with the device


def answer(view: NodeView, at: float, command_id: str, status: str) -> None:
    body = {"id": command_id, "name": "status", "status": status, "reason": "", "result": {}}
    envelope = {"v": 1, "node": view.node, "kind": "result", "ts": at,
                "seq": view.sequence.last_seq + 1, "body": body}  # fmt: skip
    view.absorb(f"cupola/v1/{view.node}/result", json.dumps(envelope).encode(), at)


def tables(app: MonitorApp) -> dict[str, list[list[object]]]:
    return {
        table.id or "": [table.get_row_at(row) for row in range(table.row_count)]
        for table in app.query(DataTable)
    }


async def test_a_screen_kept_up_to_date_shows_what_one_drawn_anew_shows() -> None:
    """Each redraw touches only the rows and cells that changed: what it comes to is what
    a monitor started on the same view draws."""
    view = NodeView("bench-node")
    last = load_capture(Path(__file__).parent / "captures" / "nominal.jsonl", view)
    add_events(view, last, *[f"earlier {n:03d}" for n in range(120)])  # more than shown
    view.command_sent("c-1", "status", {}, last, sender="fc-1")
    now = [last]
    app = MonitorApp(view, clock=lambda: now[0], redraw_every_s=None)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        app.query_one("#filter", Input).value = "earlier 01"  # another filter, then none again
        await pilot.pause()
        app.query_one("#filter", Input).value = ""
        await pilot.pause()
        now[0] += 0.5  # every age moves
        set_device(view, now[0], "cam-a", status={**view.devices["cam-a"]["status"],
                                                  "temperature_cdeg": 2350})  # fmt: skip
        add_events(view, now[0], "newer 000", "newer 001")  # two come, two go
        answer(view, now[0], "c-1", "ok")
        app.redraw()
        await pilot.pause()
        kept, kept_tables = app.export_screenshot(), tables(app)
    anew = MonitorApp(view, clock=lambda: now[0], redraw_every_s=None)
    async with anew.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        assert tables(anew) == kept_tables
        assert anew.export_screenshot() == kept
