"""The monitor's SteadyTable draws what Textual's own DataTable draws, segment for segment
(styles and the row and column each segment tells the mouse), rendering again only the cells
that changed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from rich.segment import Segment
from rich.text import Text
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widgets import DataTable

from tools.monitor.table import SteadyTable


class Pair(App[None]):
    """The same rows in a stock table and a steady one, six lines each (so some scroll)."""

    CSS = "DataTable { height: 6; }"
    AUTO_FOCUS = None  # both unfocused: drawn alike

    def compose(self) -> ComposeResult:
        yield DataTable(id="stock", zebra_stripes=True, cursor_type="row")
        yield SteadyTable(id="steady", zebra_stripes=True, cursor_type="row")

    @property
    def tables(self) -> list[DataTable[Any]]:
        return [self.query_one("#stock", DataTable), self.query_one("#steady", DataTable)]


def drawn(table: DataTable[Any]) -> list[list[Segment]]:
    return [list(strip) for strip in table.render_lines(Region(0, 0, *table.size))]


async def same(pilot: Pilot[None], app: Pair, change: Callable[[DataTable[Any]], object]) -> None:
    for table in app.tables:
        change(table)
    await pilot.pause()
    stock, steady = (drawn(table) for table in app.tables)
    assert steady == stock


async def hovered(pilot: Pilot[None], app: Pair) -> None:
    """The mouse over one cell of each table in turn, then another: drawn alike."""
    lines = []
    for table in app.tables:
        for offset in ((12, 3), (2, 4)):
            await pilot.hover(table, offset=offset)
            await pilot.pause()
            lines.append(drawn(table))
    await pilot.hover(None, offset=(0, 19))  # off both tables
    await pilot.pause()
    assert lines[2:] == lines[:2]


async def focused(pilot: Pilot[None], app: Pair) -> None:
    """Each table focused in turn (one at a time): drawn alike."""
    lines = []
    for table in app.tables:
        table.focus()
        await pilot.pause()
        lines.append(drawn(table))
    app.set_focus(None)
    assert lines[1] == lines[0]


def columns(table: DataTable[Any]) -> None:
    for name in ("name", "draw", "bar"):
        table.add_column(name, key=name)


def several(table: DataTable[Any]) -> None:
    """Cells updated one by one in the stock table, together in the steady one."""
    changed = [("4", "draw", Text("0.1 W")), ("6", "bar", Text("xxxx", style="green"))]
    if isinstance(table, SteadyTable):
        table.update_cells(changed)
    else:
        for row, column, value in changed:
            table.update_cell(row, column, value)


def cells(n: int) -> list[Text]:
    return [Text(f"row {n}", style="bold"), Text(f"{n * 1.5:.1f} W"), Text("x" * (n % 4))]


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Textual's own renderings of a cell, and of a line."""
    counted: Counter[str] = Counter()
    for name in ("_render_cell", "_render_line"):
        monkeypatch.setattr(DataTable, name, counting(counted, name, getattr(DataTable, name)))
    return counted


def counting(counted: Counter[str], name: str, render: Callable[..., Any]) -> Callable[..., Any]:
    def count(table: DataTable[Any], *args: Any, **kwargs: Any) -> Any:
        counted[name] += 1
        return render(table, *args, **kwargs)

    return count


async def test_it_draws_what_a_datatable_draws_through_every_kind_of_change() -> None:
    app = Pair()
    async with app.run_test(size=(60, 20)) as pilot:
        await same(pilot, app, columns)
        await same(pilot, app, lambda t: [t.add_row(*cells(n), key=str(n)) for n in range(10)])
        await same(pilot, app, lambda t: t.update_cell("2", "draw", Text("9.9 W", style="red")))
        await same(pilot, app, several)
        await same(pilot, app, lambda t: t.remove_row("1"))  # the rows below move up
        await same(pilot, app, lambda t: t.add_row(*cells(10), key="10"))
        await same(pilot, app, lambda t: t.sort(key=lambda row: -len(row[2]), reverse=True))
        await same(pilot, app, lambda t: t.move_cursor(row=3))
        await hovered(pilot, app)
        await focused(pilot, app)
        await same(pilot, app, lambda t: t.scroll_to(y=3, animate=False, immediate=True))
        await same(pilot, app, lambda t: setattr(t, "zebra_stripes", False))
        await same(pilot, app, lambda t: setattr(t.app, "theme", "textual-light"))
        await same(pilot, app, lambda t: t.clear(columns=True).add_columns("other"))
        await same(pilot, app, lambda t: t.add_row(Text("anew"), key="1"))


class One(App[None]):
    def compose(self) -> ComposeResult:
        yield SteadyTable(id="steady", cursor_type="none")  # as the event log: no stripes


async def test_only_the_cells_that_changed_are_rendered_again(renders: Counter[str]) -> None:
    app = One()
    async with app.run_test(size=(60, 20)) as pilot:
        table = app.query_one(SteadyTable)
        columns(table)
        for n in range(8):
            table.add_row(*cells(n), key=str(n))
        await pilot.pause()
        assert renders == {"_render_cell": 9 * 3, "_render_line": 9}  # the header, eight rows

        renders.clear()
        table.update_cell("3", "draw", Text("1.0 W"))
        table.update_cell("5", "bar", Text("xx"))
        await pilot.pause()
        assert renders == {"_render_cell": 2, "_render_line": 2}

        renders.clear()
        table.remove_row("0")  # every row below moves up: drawn as it was, one row higher
        await pilot.pause()
        assert not renders
