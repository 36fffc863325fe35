"""A DataTable that renders again only what changed.

Textual's DataTable keys its render caches on a count that every update bumps: one cell
changed, and every line and cell on screen goes through Rich again (for 64 devices whose
ages move each half second, most of a redraw). Here a cell's rendering is kept while the
cell holds the same value object, drawn at the same width in the same style, and a line's
while its row holds the same values drawn alike; anything else is Textual's own rendering.
A row that moved (a new event above it) keeps its rendering: only the row number that its
segments carry for the mouse is rewritten. The monitor gives a cell a new object whenever
what it says changes, and never changes one in place.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Self

from rich.segment import Segment
from rich.style import Style
from textual.coordinate import Coordinate
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import CellType, ColumnKey, RowKey

Lines = list[list[Segment]]


@dataclass(frozen=True)
class _Cell:
    value: object  # the cell's value object when drawn
    how: tuple[Any, ...]  # width, style, cursor: all that shapes it but where the row is
    row: int  # the row's index when drawn (its segments say so to the mouse)
    lines: Lines


@dataclass(frozen=True)
class _Line:
    values: tuple[object, ...]  # the row's value objects when drawn
    how: tuple[Any, ...]
    row: int
    strip: Strip


class SteadyTable(DataTable[CellType]):
    _removing = False  # inside remove_row: it asks for no layout of the screen
    _updating = False  # inside update_cells: one refresh at the end
    _drawing = False  # inside render_lines: what draws all alike is the same throughout

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # By row key (None: the header): (column, cursor/hover) -> the cell's rendering, and
        # the row's line number -> the line's (the header's lines under its own key).
        self._cells: dict[RowKey | None, dict[tuple[Any, ...], _Cell]] = {}
        self._lines: dict[RowKey, dict[int, _Line]] = {}
        self._alike: tuple[Any, ...] = ()

    def _render_cell(
        self, row_index: int, column_index: int, base_style: Style, width: int, *args: Any,
        **kwargs: Any,
    ) -> Lines:  # fmt: skip
        render = super()._render_cell
        if column_index < 0:  # a row label (none in the monitor): Textual's own
            return render(row_index, column_index, base_style, width, *args, **kwargs)
        row_key: RowKey | None = None
        if row_index < 0:  # the header
            value: object = self.ordered_columns[column_index].label
            height = self.header_height
        else:
            row_key, column_key = self.coordinate_to_cell_key(Coordinate(row_index, column_index))
            value, height = self.get_cell(row_key, column_key), self.rows[row_key].height
        where = (column_index, args, tuple(kwargs.items()))
        how = (base_style, width, height, row_index < self.fixed_rows, *self._drawn_alike())
        drawn = self._cells.setdefault(row_key, {})
        kept = drawn.get(where)
        if kept is not None and kept.value is value and kept.how == how:
            if kept.row == row_index:
                return kept.lines
            lines = [_moved(line, row_index) for line in kept.lines]
        else:
            lines = render(row_index, column_index, base_style, width, *args, **kwargs)
        drawn[where] = _Cell(value, how, row_index, lines)
        return lines

    def _render_line(self, y: int, x1: int, x2: int, base_style: Style) -> Strip:
        render = super()._render_line
        try:
            row_key, line = self._get_offsets(y)
        except LookupError:  # below the last row
            return render(y, x1, x2, base_style)
        if self._should_render_row_labels:  # (none in the monitor): Textual's own
            return render(y, x1, x2, base_style)
        values: tuple[object, ...]
        if row_key in self.rows:
            row_index = self.get_row_index(row_key)
            values, height = tuple(self.get_row_at(row_index)), self.rows[row_key].height
        else:  # the header
            row_index, height = -1, self.header_height
            values = tuple(column.label for column in self.ordered_columns)
        how = (
            line, height, x1, x2, base_style, *self._marks(row_index),
            row_index % 2 if self.zebra_stripes else None, row_index < self.fixed_rows,
            *self._drawn_alike(),
        )  # fmt: skip
        drawn = self._lines.setdefault(row_key, {})
        kept = drawn.get(line)
        if (
            kept is not None
            and kept.how == how
            and len(kept.values) == len(values)
            and all(a is b for a, b in zip(kept.values, values, strict=True))
        ):
            if kept.row == row_index:
                return kept.strip
            strip = Strip(_moved(list(kept.strip), row_index), kept.strip.cell_length)
        else:
            strip = render(y, x1, x2, base_style)
        drawn[line] = _Line(values, how, row_index, strip)
        return strip

    def render_lines(self, crop: Region) -> list[Strip]:
        self._drawing = True
        try:
            return super().render_lines(crop)
        finally:
            self._drawing, self._alike = False, ()

    def _drawn_alike(self) -> tuple[Any, ...]:
        """What shapes every cell and line of the table alike (worked out once a drawing)."""
        if self._drawing and self._alike:
            return self._alike
        alike = (
            self.size.width, tuple(c.get_render_width(self) for c in self.ordered_columns),
            self.cell_padding, self.show_header, self.show_cursor, self._show_hover_cursor,
            self._pseudo_class_state, self.fixed_columns, self.cursor_foreground_priority,
            self.cursor_background_priority,
        )  # fmt: skip
        if self._drawing:
            self._alike = alike
        return alike

    def _marks(self, row_index: int) -> tuple[object, ...]:
        """Which of a row's cells the cursor and the mouse highlight: a whole row, a column
        or one cell (`_should_highlight`), told apart by the first cell and the one under each."""
        kind, highlight, marks = self.cursor_type, self._should_highlight, []
        for at in (self.cursor_coordinate, self.hover_coordinate):
            first, under = Coordinate(row_index, 0), Coordinate(row_index, at.column)
            marks += [at.column, highlight(at, first, kind), highlight(at, under, kind)]
        return (kind, *marks)

    def remove_row(self, row_key: RowKey | str) -> None:
        """Without a layout of the whole screen: the table's size is worked out again when it
        is next idle, and a new size lays the screen out then (`virtual_size` asks for it).
        One event in, one out, every half second: the size stays, the screen need not move."""
        self._removing = True
        try:
            super().remove_row(row_key)
        finally:
            self._removing = False
        key = RowKey(row_key) if isinstance(row_key, str) else row_key
        self._cells.pop(key, None)
        self._lines.pop(key, None)

    def update_cells(self, cells: Iterable[tuple[RowKey | str, ColumnKey | str, CellType]]) -> None:
        """Several cells, refreshed once (each update_cell refreshes the whole table)."""
        self._updating = True
        try:
            for row_key, column_key, value in cells:
                self.update_cell(row_key, column_key, value)
        finally:
            self._updating = False
        self.refresh()

    def refresh(
        self, *regions: Region, repaint: bool = True, layout: bool = False,
        recompose: bool = False,
    ) -> Self:  # fmt: skip
        if self._updating:
            return self
        layout = layout and not self._removing
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    def clear(self, columns: bool = False) -> SteadyTable[CellType]:
        self._forget()
        super().clear(columns)
        return self

    def notify_style_update(self) -> None:
        """A theme or CSS change restyles everything."""
        self._forget()
        super().notify_style_update()

    def _forget(self) -> None:
        self._cells.clear()
        self._lines.clear()


def _moved(line: list[Segment], row_index: int) -> list[Segment]:
    """A line of segments drawn for one row, for another: the row they name for the mouse."""
    at = Style.from_meta({"row": row_index})
    return [
        Segment(text, style + at, control)
        if style is not None and "row" in style.meta
        else Segment(text, style, control)
        for text, style, control in line
    ]
