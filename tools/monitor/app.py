"""`cupola monitor`: the terminal window into a node, for flight controllers and the director.

The screen only reads a `NodeView`; the broker subscription (live) or a capture (replay)
fills the view. Commands are signed with the key file given at start, sent on the node's
command topic, and their results shown as they come back; a hazardous command the node
armed asks here for its second confirmation.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import aiomqtt
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.markup import escape
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import (
    DataTable,
    Footer,
    Header,
    Input,
    Label,
    Sparkline,
    Static,
    TabbedContent,
    TabPane,
)
from textual.widgets.data_table import ColumnKey

from protocols import alarms, ground
from protocols.ground import KeyFile
from tools.archive.connect import connect
from tools.broker_link import BrokerLink
from tools.cmd import ArgumentError, parse_args, signatures_in
from tools.ground_client import DEFAULT_VALID_FOR_S, sign_command
from tools.monitor import rows
from tools.monitor.archive import FILL_S, Archived, messages, missing
from tools.monitor.table import SteadyTable
from tools.monitor.view import (
    SEVERITIES,
    AlarmKey,
    CommandLine,
    EventLine,
    NodeView,
    utc_midnight,
)

SEVERITY_STYLES = {"critical": "bold red", "warning": "yellow", "info": "", "diagnostic": "dim"}
EVENT_ROWS_SHOWN = 100  # the newest matching the filter; `/` searches them all
EVENT_HISTORY = 400  # events asked of the node's log on joining: a screenful and more
REDRAW_S = 0.5
# after a gap: ask the archive, then again as it catches up (after a broker restart it may
# lag by a while)
GAP_RETRIES_S = (0.5, 1.5, 3.0, 6.0, 12.0, 24.0)


def _line(cells: list[rows.Cell], separator: str = "  ") -> Text:
    text = Text()
    for index, cell in enumerate(cells):
        if index:
            text.append(separator)
        text.append(cell.text, style=cell.style)
    return text


def _row(*cells: str | Text) -> list[Text]:
    """Table cells as plain text: node messages and operator arguments are never markup."""
    return [cell if isinstance(cell, Text) else Text(cell) for cell in cells]


Rows = list[tuple[str, list[Text]]]  # a table's rows: key and cells, top to bottom


def _refill(table: DataTable[Any], rows: Rows) -> None:
    """Make a table show `rows`; a reader's cursor stays on its row, the screen steady.

    Only the rows that came, went or changed are touched: filling a table anew measures every
    cell again, and a new event every half second would cost that each time. At the top the
    table follows what comes in; a flight controller who moved down to read an event keeps
    reading it while newer ones arrive above.
    """
    shown = _SHOWN.get(table, [])
    if shown == rows:
        return
    reading: str | None = None
    if table.row_count and table.cursor_row > 0:
        reading = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
    was_at, scrolled = table.cursor_row, table.scroll_y
    _SHOWN[table] = _patch(table, shown, rows)
    if reading is None or reading not in table.rows:
        table.move_cursor(row=0, animate=False, scroll=False)
        if table.scroll_x or table.scroll_y:
            table.scroll_to(x=0, y=0, animate=False, immediate=True)
        return
    now_at = table.get_row_index(reading)
    table.move_cursor(row=now_at, animate=False, scroll=False)
    table.scroll_to(y=scrolled + now_at - was_at, animate=False, immediate=True)


def _patch(table: DataTable[Any], shown: Rows, rows: Rows) -> Rows:
    """Turn `shown` into `rows`: rows gone or changed removed, new or changed ones added (so
    measured, a column only ever widening, as when filled anew), then put in order. Returns
    what the table holds: a row that did not change keeps its cells."""
    before = dict(shown)
    kept = [(key, before[key] if before.get(key) == cells else cells) for key, cells in rows]
    if 2 * sum(cells is before.get(key) for key, cells in kept) <= len(kept):
        table.clear()  # mostly new (another filter): one pass over them
        for key, cells in kept:
            table.add_row(*cells, key=key)
        return kept
    now = dict(kept)
    for key, cells in shown:
        if now.get(key) is not cells:
            table.remove_row(key)
    for key, cells in kept:
        if key not in table.rows:
            table.add_row(*cells, key=key)
    if [row.key.value for row in table.ordered_rows] != list(now):
        # The table holds each row's own cell objects: the first one says where it goes.
        position = {id(cells[0]): n for n, (_, cells) in enumerate(kept)}
        table.sort(key=lambda values: position[id(values[0])])
    return kept


# What each table was last filled with (compared, not re-laid out, when nothing changed).
_SHOWN: weakref.WeakKeyDictionary[DataTable[Any], Rows] = weakref.WeakKeyDictionary()


def _lines(cells: list[rows.Cell]) -> Text:
    return Text("\n").join(Text(cell.text, style=cell.style) for cell in cells)


class ConfirmHazardous(ModalScreen[bool]):
    """The second confirmation of a command the node armed instead of executing."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Confirm"),
        Binding("n,escape", "answer(False)", "Cancel"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Label("HAZARDOUS COMMAND", id="confirm-title")
            yield Label(self.question, markup=False)
            yield Label("y: execute it now    n: let the arm expire", id="confirm-keys")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class NodeCommands(Provider):
    """The command palette: `NAME key=value ...`, signed and sent to the node."""

    @property
    def monitor(self) -> MonitorApp:
        app = self.app
        assert isinstance(app, MonitorApp)
        return app

    def _hit(
        self, name: str, signature: ground.CommandSignature | None, words: list[str]
    ) -> tuple[str, Callable[[], Any], str]:
        """What choosing `name` with `words` does: send it, or ring and say what is wrong."""
        monitor = self.monitor
        try:
            args = parse_args(words, signature)
        except ArgumentError as exc:
            return f"{name}: {exc}", monitor.bell, "fix the arguments"
        shown = f"{name} {json.dumps(args)}" if args else name
        sent_as = f"signed as {monitor.role}, sent to {monitor.view.node}"
        help_text = sent_as
        if signature is not None:
            again = (
                " Hazardous: asks here for a second confirmation." if signature.hazardous else ""
            )
            help_text = f"{signature.doc}{again} ({sent_as})"
        return shown, partial(monitor.send_command, name, args), help_text

    async def discover(self) -> Hits:
        signatures = signatures_in(self.monitor.view.birth)
        for name in self.monitor.command_names():
            shown, choose, help_text = self._hit(name, signatures.get(name), [])
            yield DiscoveryHit(Content(shown), choose, help=escape(help_text))

    async def search(self, query: str) -> Hits:
        name_part, _, rest = query.strip().partition(" ")
        matcher = self.matcher(name_part)
        try:
            words = shlex.split(rest)
        except ValueError as exc:  # an unclosed quote
            words, quoting = [], f"cannot read the arguments: {exc}"
        else:
            quoting = ""
        signatures = signatures_in(self.monitor.view.birth)
        for name in self.monitor.command_names():
            score = matcher.match(name)
            if score <= 0:
                continue
            if quoting:
                shown, choose, help_text = f"{name}: {quoting}", self.monitor.bell, "fix them"
            else:
                shown, choose, help_text = self._hit(name, signatures.get(name), words)
            # Arguments are the operator's text, never markup: only the name is highlighted.
            display = matcher.highlight(name) + Content(shown[len(name) :])
            yield Hit(score, display, choose, text=shown, help=escape(help_text))


SHELVE_MAX_MIN = 24 * 60


class AlarmActions(Provider):
    """The palette: `shelve MINUTES REASON` on an alarm; `unshelve` a shelved one."""

    async def search(self, query: str) -> Hits:
        app = self.app
        assert isinstance(app, MonitorApp)
        word, _, rest = query.strip().partition(" ")
        now, view = app.clock(), app.view
        if word and "shelve".startswith(word.lower()):
            minutes_text, _, reason = rest.strip().partition(" ")
            try:
                minutes = float(minutes_text)
            except ValueError:
                minutes = 0.0
            ready = 0 < minutes <= SHELVE_MAX_MIN and len(reason.strip()) >= 3
            for alarm in sorted(view.alarms.values(), key=lambda a: a.key):
                if not alarm.active or view.shelved(alarm.key, now) is not None:
                    continue
                name = f"{alarm.key[0]} {alarm.key[1]}"
                if ready:
                    shown = f"shelve {name} for {minutes:g} min: {reason.strip()}"
                    shelve = partial(app.shelve, alarm.key, minutes * 60, reason.strip())
                    yield Hit(1.0, Content(shown), shelve, text=shown,
                              help="everyone sees it shelved, by you, with why")  # fmt: skip
                else:
                    shown = f"shelve {name}: type shelve MINUTES REASON"
                    yield Hit(0.5, Content(shown), app.bell, text=shown,
                              help=f"1 to {SHELVE_MAX_MIN} minutes, and why")  # fmt: skip
        if word and "unshelve".startswith(word.lower()):
            for key in sorted(view.shelves):
                if view.shelved(key, now) is not None:
                    shown = f"unshelve {key[0]} {key[1]}"
                    yield Hit(1.0, Content(shown), partial(app.unshelve, key), text=shown)


class MonitorApp(App[None]):
    CSS_PATH = "monitor.tcss"
    TITLE = "Cupola monitor"
    COMMANDS = App.COMMANDS | {NodeCommands, AlarmActions}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "acknowledge", "Ack alarms"),
        Binding("slash", "filter", "Filter events"),
        Binding("v", "severity", "Min severity"),
        Binding("e", "tab('events')", "Events"),
        Binding("s", "tab('shots')", "Shot log"),
        Binding("c", "tab('commands')", "Commands"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        view: NodeView,
        *,
        url: str | None = None,
        ca_file: Path | None = None,
        key: KeyFile | None = None,
        clock: Callable[[], float] = time.time,
        subtitle: str = "",
        client_id: str | None = None,
        valid_for_s: float = DEFAULT_VALID_FOR_S,
        redraw_every_s: float | None = REDRAW_S,
        archive_url: str | None = None,
    ) -> None:
        """`redraw_every_s` None: drawn once, for a replay at a stopped clock, where nothing on
        the screen moves (and a screenshot of it is the same every time)."""
        super().__init__()
        self.redraw_every_s = redraw_every_s
        self.archive_url = archive_url  # `cupola archive`'s database: history and gaps from it
        self._gaps_asked = 0
        self.valid_for_s = valid_for_s  # each command's not_after: the node refuses it later
        self.view = view
        self.url = url
        self.ca_file = ca_file
        self.key = key
        self.clock = clock
        # The broker keeps this session while the monitor is cut off, so messages sent
        # meanwhile (a node draining its backlog after an outage) wait for it: a gap on
        # screen is a real loss, not the monitor's own absence.
        self.client_id = client_id or f"cupola-monitor-{uuid.uuid4().hex[:12]}"
        self.link: BrokerLink | None = None
        self.min_severity = "info"
        self.filter_text = ""
        self._pending: set[str] = set()
        self._quiet: set[str] = set()  # sent by the monitor itself: results not announced
        self._drawn_revision = -1
        self._device_widths: list[int] = []
        self._device_columns: list[ColumnKey] = []
        self._device_rows: dict[str, _DeviceRow] = {}
        self._panels: dict[str, Text] = {}  # what each panel says now
        self._event_rows: dict[str, tuple[EventLine, list[Text]]] = {}  # cells made once
        self.redrawn = asyncio.Event()  # set after each redraw: what the screen shows is current
        self._caught_up = False
        self.sub_title = subtitle or (url or "replay")

    @property
    def role(self) -> str:
        return self.key.role.value if self.key else "nobody (read-only)"

    # -- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(icon="◉")
        yield Static(id="node")
        yield SteadyTable(id="devices", cursor_type="none", zebra_stripes=True)
        yield Static(id="cameras")
        with Horizontal(id="panels"):
            with Vertical(id="power", classes="panel"):
                yield Static(id="power-text")
                yield Sparkline([], id="power-spark", summary_function=max)
            yield Static(id="pdu", classes="panel")
            yield Static(id="data", classes="panel")
            yield Static(id="alarms", classes="panel")
        with TabbedContent(id="tabs", initial="events"):
            with TabPane("Events", id="events"):
                yield Input(placeholder="filter events (text)", id="filter")
                yield SteadyTable(id="event-table", cursor_type="row")
            with TabPane("Shot log", id="shots"):
                yield SteadyTable(id="shot-table", cursor_type="row")
            with TabPane("Commands", id="commands"):
                yield SteadyTable(id="command-table", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        # The screen this layout lives on: redraws reach it while the palette or a
        # confirmation is on top, and its timer dies with it (none lands mid-teardown).
        self.main = self.screen
        self.main.query_one("#power", Vertical).border_title = "power"
        self.main.query_one("#pdu", Static).border_title = "pdu channels"
        self.main.query_one("#data", Static).border_title = "data"
        self.main.query_one("#alarms", Static).border_title = "alarms"
        self.main.query_one("#event-table", DataTable).add_columns(
            "time", "severity", "event", "source", "message"
        )
        self.main.query_one("#shot-table", DataTable).add_columns(
            "scene", "take", "circled", "timecode in", "cameras", "state", "roll", "started"
        )
        self.main.query_one("#command-table", DataTable).add_columns(
            "sent", "sender", "command", "arguments", "status", "reason / result"
        )
        self.redraw()
        if self.redraw_every_s is not None:
            self.main.set_interval(self.redraw_every_s, self.redraw)
        if self.url is not None and self.archive_url is not None:
            self.run_worker(self._fill_then_link(), group="archive", exit_on_error=False)
        elif self.url is not None:
            self.start_link()

    async def _fill_then_link(self) -> None:
        """The last hour from the archive first, then live (what overlaps counts once)."""
        now = self.clock()
        try:
            found = await asyncio.to_thread(self._archived, now - FILL_S, now + 1)
        except Exception as exc:  # the archive is a help, never a condition: go live anyway
            self.notify(f"nothing from the archive: {exc}", title="archive", severity="warning",
                        markup=False)  # fmt: skip
        else:
            for message in found:
                self.view.absorb(message.topic, message.payload, message.received)
            self.notify(f"{len(found)} messages from the archive", title="archive")
            self._gaps_asked = len(self.view.sequence.gaps)
        self.start_link()

    def _archived(self, since: float, until: float) -> list[Archived]:
        assert self.archive_url is not None
        with connect(self.archive_url) as conn:
            return messages(conn, self.view.node, since, until)

    def _missing(self) -> list[Archived]:
        assert self.archive_url is not None
        with connect(self.archive_url) as conn:
            return missing(conn, self.view.node, self.view.sequence.stream,
                           list(self.view.sequence.gaps))  # fmt: skip

    async def _fill_gaps(self) -> None:
        """A gap in the stream: what the archive kept of it (it may lag a little: ask again)."""
        for wait in GAP_RETRIES_S:
            await asyncio.sleep(wait)
            if not self.view.sequence.gaps:
                return
            try:
                found = await asyncio.to_thread(self._missing)
            except Exception as exc:
                self.notify(f"the gap stays: {exc}", title="archive", severity="warning",
                            markup=False)  # fmt: skip
                return
            for message in found:
                self.view.absorb(message.topic, message.payload, self.clock())

    def start_link(self) -> None:
        """Subscribe to the node; the worker group "broker" runs the subscription."""
        assert self.url is not None
        self.link = BrokerLink(
            self.url, [ground.topic(self.view.node, "#")], self._receive,
            ca_file=self.ca_file, client_id=self.client_id, persistent=True,
            on_status=self._connection,
        )  # fmt: skip
        self.run_worker(self.link.run(), group="broker", exit_on_error=False)

    # -- input from the broker ------------------------------------------------------------------

    def _connection(self, connected: bool, detail: str) -> None:
        self.view.set_connection(connected, detail, self.clock())
        if connected:
            self._caught_up = False  # takes may have rolled or been cut meanwhile
            self.notify(detail, title="broker", markup=False)
        else:
            self.notify(detail, title="broker connection lost", severity="warning", markup=False)

    async def _receive(self, topic: str, payload: bytes) -> None:
        self.view.absorb(topic, payload, self.clock())
        gaps = len(self.view.sequence.gaps)
        if self.archive_url is not None and gaps > self._gaps_asked:
            self.run_worker(self._fill_gaps(), group="archive", exit_on_error=False)
        self._gaps_asked = gaps
        if self.view.acks_ended:
            self._end_acks()
        for command_id in list(self._pending):
            command = self.view.commands.get(command_id)
            if command is None:  # aged out of the view unanswered
                self._pending.discard(command_id)
            elif command.status != "sent":
                self._pending.discard(command_id)
                self._answered(command_id)
        if self.view.online and not self._caught_up and self.key is not None:
            self._caught_up = True  # what happened before we joined, or while we were away
            await self.send_command(
                "shotlog.query", {"since": utc_midnight(self.clock()), "limit": 500}, quiet=True
            )
            await self.send_command(
                "events.recent", {"limit": EVENT_HISTORY, "min_severity": "info"}, quiet=True
            )
            if self.view.commands_authority():
                await self.send_command("authority.status", {}, quiet=True)

    # -- commands ------------------------------------------------------------------------------

    def command_names(self) -> list[str]:
        names = sorted((self.view.birth or {}).get("commands") or {})
        allowed = ground.PERMISSIONS[self.key.role] if self.key else frozenset()
        return [n for n in names if allowed is None or n in allowed]

    async def send_command(self, name: str, args: dict[str, Any], *, quiet: bool = False) -> None:
        if self.key is None:
            self.notify("start the monitor with --key FILE to send commands", severity="error")
            return
        if self.link is None:
            self.notify("a replay cannot send commands", severity="error")
            return
        command = sign_command(self.key, name, args, lifetime_s=self.valid_for_s)
        self.view.command_sent(command["id"], name, args, self.clock(), sender=self.key.key_id)
        self._pending.add(command["id"])
        if quiet:
            self._quiet.add(command["id"])
        else:
            self.notify(f"{name} sent", title="command")
        try:
            await self.link.publish(
                ground.command_topic(self.view.node, self.key.role), json.dumps(command).encode()
            )
        except aiomqtt.MqttError as exc:
            self._pending.discard(command["id"])
            self.view.command_failed(command["id"], f"not sent: {exc}")
            self.notify(f"{name} not sent: {exc}", title="command", severity="error", markup=False)

    def _answered(self, command_id: str) -> None:
        command = self.view.commands[command_id]
        if command_id in self._quiet:
            self._quiet.discard(command_id)
            if command.status == "ok":
                return
        if command.status == "armed":
            if command.result.get("two_person"):
                self.notify(
                    f"{command.name} is armed: another console must confirm it (two-person "
                    f"rule), within {command.result.get('window_s', '?')} s",
                    title="armed", severity="warning", markup=False,
                )  # fmt: skip
                return
            self.ask_to_confirm(command)
            return
        detail = command.reason or json.dumps(command.result)[:200]
        title = f"{command.name}: {command.status}"
        severity: SeverityLevel = "information" if command.status == "ok" else "error"
        self.notify(detail, title=title, severity=severity, markup=False)

    def ask_to_confirm(self, command: CommandLine) -> None:
        """The second confirmation of an armed command: this console's, or another's."""
        arm_id = str(command.result.get("arm_id", command.id))
        what = json.dumps(command.args) if command.own else f"(sent by {command.sender})"
        question = (
            f"{command.name} {what} is armed by {command.armed_by or command.sender}, not "
            f"executed. Execute it now? (the arm expires in {command.result.get('window_s', '?')}"
            " s from when it was armed)"
        )

        def confirmed(answer: bool | None) -> None:
            if answer:
                self.run_worker(self.send_command("confirm", {"arm_id": arm_id}))
            else:
                self.notify(f"{command.name} left to expire", title="not confirmed")

        self.push_screen(ConfirmHazardous(question), confirmed)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on an armed command in the Commands tab: confirm it (a second console)."""
        if event.data_table.id != "command-table" or event.row_key.value is None:
            return
        command = self.view.commands.get(event.row_key.value)
        if command is not None and command.status == "armed":
            self.ask_to_confirm(command)

    # -- actions -------------------------------------------------------------------------------

    def action_acknowledge(self) -> None:
        """Acknowledge every alarm waiting; live, every other console sees who and when."""
        waiting = self.view.unacknowledged()  # shelved ones too
        if self.link is None:
            done = self.view.acknowledge()
        else:
            for alarm in waiting:
                self._share(alarm.key, "ack", raised_at=alarm.raised_at, level=alarm.level)
            done = len(waiting)
        self.notify(f"{done} alarm(s) acknowledged" if done else "nothing to acknowledge")
        self.redraw()

    @property
    def operator(self) -> str:
        """Who this console is to the others: its key id, else its broker client id."""
        return self.key.key_id if self.key is not None else self.client_id

    def shelve(self, key: AlarmKey, duration_s: float, reason: str) -> None:
        """Shelve an alarm for a while, with a reason: not counted as waiting anywhere."""
        now = self.clock()
        alarm = self.view.alarms.get(key)
        self._share(key, "shelve", raised_at=alarm.raised_at if alarm else now,
                    until=now + duration_s, reason=reason)  # fmt: skip
        self.notify(f"{key[0]} {key[1]} shelved for {duration_s / 60:g} min", title="alarm")

    def unshelve(self, key: AlarmKey) -> None:
        self._share(key, "unshelve", raised_at=self.clock())

    def _share(self, key: AlarmKey, action: alarms.Action, **fields: Any) -> None:
        """Apply an alarm action here at once and tell every console (retained)."""
        message = alarms.AlarmAction(
            v=1, node=self.view.node, source=key[0], what=key[1], action=action,
            by=self.operator, at=self.clock(), role=self.key.role.value if self.key else "",
            **fields,
        )  # fmt: skip
        self.view.alarm_action(message)
        if self.link is not None:
            topic = alarms.topic(self.view.node, key[0], key[1], action)
            self.run_worker(self._publish_retained(topic, alarms.encode(message)))

    async def _publish_retained(self, topic: str, payload: bytes) -> None:
        assert self.link is not None
        try:
            await self.link.publish(topic, payload, retain=True)
        except aiomqtt.MqttError as exc:
            self.notify(f"not shared with the other consoles: {exc}", title="alarm",
                        severity="error", markup=False)  # fmt: skip

    def _end_acks(self) -> None:
        """Alarms seen clearing while acknowledged: their retained ack goes, for everyone."""
        for key in self.view.acks_ended:
            if self.link is not None:
                topic = alarms.topic(self.view.node, key[0], key[1], "ack")
                self.run_worker(self._publish_retained(topic, b""))
        self.view.acks_ended.clear()

    def action_filter(self) -> None:
        self.main.query_one(TabbedContent).active = "events"
        self.main.query_one("#filter", Input).focus()

    def action_severity(self) -> None:
        index = (SEVERITIES.index(self.min_severity) + 1) % len(SEVERITIES)
        self.min_severity = SEVERITIES[index]
        self.notify(f"events shown: {self.min_severity} and worse")
        self._drawn_revision = -1
        self.redraw()

    def action_tab(self, tab: str) -> None:
        self.main.query_one(TabbedContent).active = tab

    def on_input_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self._drawn_revision = -1
        self.redraw()

    # -- drawing -------------------------------------------------------------------------------

    def redraw(self) -> None:
        """Ages and loss of signal move with the clock; the rest only when the view changed."""
        now = self.clock()
        view = self.view
        self._put("#node", _line(rows.node_line(view, now), "   "))
        self._devices(now)
        self._put("#power-text", _lines(rows.power_lines(view, now)))
        samples = [w for _, w in view.power_samples]
        spark = self.main.query_one("#power-spark", Sparkline)
        if spark.data != samples:
            spark.data = samples
        self._shown_if("#cameras", rows.camera_lines(view))
        self._shown_if("#pdu", rows.pdu_lines(view))
        self._put("#data", _lines(rows.data_lines(view)))
        self._alarms()
        if view.revision != self._drawn_revision:
            self._drawn_revision = view.revision
            self._events()
            self._shots(now)
            self._commands()
        self.redrawn.set()

    def _shown_if(self, selector: str, lines: list[rows.Cell]) -> None:
        """A part of the screen only the rigs that have it need: hidden while it is empty."""
        widget = self.main.query_one(selector, Static)
        if widget.display != bool(lines):
            widget.display = bool(lines)
        self._put(selector, _lines(lines))

    def _put(self, selector: str, content: Text) -> None:
        """A panel is updated only when what it says changed, and the screen laid out again
        only if what it says can change the panel's size."""
        if self._panels.get(selector) != content:
            self._panels[selector] = content
            panel = self.main.query_one(selector, Static)
            panel.update(content, layout=not _sized_by_css(panel))

    def _devices(self, now: float) -> None:
        table = self.main.query_one("#devices", SteadyTable)
        before = self._device_rows
        drawn = {
            name: _DeviceRow.of(rows.device_row(self.view, name, now), before.get(name))
            for name in sorted(self.view.devices, key=_device_order(self.view))
        }
        self._device_rows = drawn
        zero = [0] * len(rows.DEVICE_COLUMNS)  # every column, with no device yet
        widths = [max(c) for c in zip(zero, *(r.widths for r in drawn.values()), strict=True)]
        if list(drawn) == list(before) and widths == self._device_widths:
            # Same devices, every column as wide as before: only the cells that changed.
            table.update_cells(
                (name, column, text)
                for name, row in drawn.items()
                for column, text, old in zip(
                    self._device_columns, row.texts, before[name].texts, strict=True
                )
                if text is not old
            )
            return
        # A column only ever widens as rows are added: laid out anew, each is as wide as
        # what it holds now, so a long text gone takes its width with it.
        self._device_widths = widths
        table.clear(columns=True)
        self._device_columns = table.add_columns(*rows.DEVICE_COLUMNS)
        for name, row in drawn.items():
            table.add_row(*row.texts, key=name)

    def _alarms(self) -> None:
        alarms = sorted(
            self.view.alarms.values(),
            key=lambda a: (a.acknowledged, a.level != "red", -a.raised_at),
        )
        past = [f"history {rows.clock(e.ts)} {e.source} {e.name}" for e in self.view.past_alarms]
        if not alarms:
            held = self.view.held()
            blind = "" if held is None else f" as of {rows.clock(held['at'])}: stream held"
            text = Text(f"no alarms{blind}", style="bold yellow" if held else "dim")
            for line in past[-3:]:  # raised and cleared while out of contact: history only
                text.append(f"\n{line}", style="dim")
            self._put("#alarms", text)
            return
        text = Text()
        now = self.clock()
        for alarm in alarms:
            shelve = self.view.shelved(alarm.key, now)
            if alarm.acknowledged or shelve is not None:
                style = "red" if alarm.level == "red" else "yellow"
            else:
                style = "bold white on red" if alarm.level == "red" else "bold black on yellow"
            state = "" if alarm.active else " (cleared)"
            mark = "SHELVED" if shelve else "ack" if alarm.acknowledged else "NEW"
            text.append(f" {alarm.level.upper():<6} {mark} ", style=style)
            text.append(f" {rows.clock(alarm.raised_at)} {alarm.message}{state}")
            if shelve is not None:
                text.append(f" shelved by {shelve.by} until {rows.clock(shelve.until or 0)}: "
                            f"{shelve.reason}", style="dim")  # fmt: skip
            if alarm.acked_by:
                text.append(f" ack {alarm.acked_by} {rows.clock(alarm.acked_at or 0)}",
                            style="dim")  # fmt: skip
            text.append("\n")
        text.append("a: acknowledge all", style="dim")
        self._put("#alarms", text)

    def _events(self) -> None:
        table = self.main.query_one("#event-table", DataTable)
        shown = self.view.events_matching(self.filter_text, self.min_severity, EVENT_ROWS_SHOWN)
        drawn, lines = {}, []
        for event in reversed(shown):
            key = str(event.seq) if event.seq is not None else repr(event.identity)
            known = self._event_rows.get(key)
            cells = known[1] if known is not None and known[0] == event else _event_cells(event)
            drawn[key] = (event, cells)
            lines.append((key, cells))
        self._event_rows = drawn
        _refill(table, lines)
        pane = self.main.query_one("#filter", Input)
        pane.placeholder = f"filter events (text); showing {self.min_severity} and worse (v)"

    def _shots(self, now: float) -> None:
        lines = []
        for take in self.view.takes_since(utc_midnight(now)):
            cells = _row(
                Text(take.scene, style="bold"),
                str(take.take),
                Text("● circled", style="bold green") if take.circled else "",
                take.timecode_in,
                ", ".join(sorted(take.clips)),
                Text("ROLLING", style="bold red") if take.rolling else "cut",
                take.roll or "",
                rows.clock(take.started_at),
            )
            lines.append((str(take.take_id), cells))
        _refill(self.main.query_one("#shot-table", DataTable), lines)

    def _commands(self) -> None:
        lines = []
        for command in reversed(list(self.view.commands.values())):
            style = {"ok": "green", "armed": "bold yellow", "sent": "dim"}.get(
                command.status, "bold red"
            )
            mine = self.key is not None and command.sender == self.key.key_id
            sender = Text(command.sender or "?", style="bold" if mine else "cyan")
            status = command.status
            if command.armed_by and command.status == "armed":
                status = f"armed by {command.armed_by}"
            cells = _row(
                rows.clock(command.sent_at),
                sender,
                command.name,
                json.dumps(command.args) if command.own else "",
                Text(status, style=style),
                command.reason or json.dumps(command.result)[:120],
            )
            lines.append((command.id, cells))
        _refill(self.main.query_one("#command-table", DataTable), lines)


@dataclass(frozen=True)
class _DeviceRow:
    """A device's row as drawn: its cells, the text made of each and how wide it is."""

    cells: list[rows.Cell]
    texts: list[Text]
    widths: list[int]

    @classmethod
    def of(cls, cells: list[rows.Cell], before: _DeviceRow | None) -> _DeviceRow:
        """A cell the same as before keeps its text (the table leaves it alone)."""
        texts, widths = [], []
        for n, cell in enumerate(cells):
            if before is not None and before.cells[n] == cell:
                texts.append(before.texts[n])
                widths.append(before.widths[n])
            else:
                text = Text(cell.text, style=cell.style)
                texts.append(text)
                widths.append(text.cell_len)
        return cls(cells, texts, widths)


def _event_cells(event: EventLine) -> list[Text]:
    style = SEVERITY_STYLES.get(event.severity, "")
    return _row(
        rows.clock(event.ts) + (" H" if event.historical else ""),
        Text(event.severity, style=style),
        Text(event.name, style=style),
        event.source,
        event.message,
    )


def _sized_by_css(widget: Widget) -> bool:
    """A box the CSS sets (its height and width, nothing to scroll): what it holds moves
    nothing on the screen."""
    width, height = widget.styles.width, widget.styles.height
    return (
        height is not None
        and not height.is_auto
        and (width is None or not width.is_auto)
        and widget.styles.overflow_y == "hidden"
    )


def _device_order(view: NodeView) -> Callable[[str], tuple[int, str]]:
    order = {"camera": 0, "light": 1, "pdu": 2}
    return lambda name: (order.get(str(view.devices[name].get("kind")), 3), name)
