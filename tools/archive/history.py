"""`cupola history`: what the archive holds, as a table, CSV, JSON lines or a plot.

`--json` prints each message as the node sent it (the envelope a live `cupola monitor --json`
capture holds under "message"), so a script can compare the two line for line.
Telemetry fields are paths into the sample: `power.draw_w`, `backlog.messages`, or with
`--device cam-a` a reading of that device (`temperature_cdeg`); several fields share a plot.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from tools.archive.connect import connect, describe
from tools.archive.rows import moment
from tools.exits import DataError

WHATS = ("events", "telemetry", "commands", "shotlog", "alarms")
_KIND = {
    "events": "event",
    "telemetry": "telemetry",
    "commands": "result",
    "shotlog": "event",
    "alarms": "event",
}
_COLUMNS = {
    "events": ["time", "seq", "severity", "name", "source", "message", "historical"],
    "commands": ["time", "seq", "key_id", "role", "name", "status", "reason"],
    "shotlog": ["time", "seq", "event", "scene", "take", "take_id", "cameras", "message"],
    "alarms": [
        "time",
        "seq",
        "what",
        "source",
        "alarm",
        "level",
        "by",
        "until",
        "message",
        "historical",
    ],
}
# The node's events that raise or clear an alarm (tools/monitor/view.py reads the same)
ALARM_EVENTS = (
    "(body->>'name' LIKE 'limit.%%' OR body->>'name' LIKE 'budget.%%' OR body->>'name' IN "
    "('power.over_cap', 'power.shed_overdue', 'power.shed_failed', 'device.offline', "
    "'power.within_cap', 'device.online'))"
)


@dataclass(frozen=True)
class Query:
    what: str
    node: str
    since: float
    until: float
    device: str | None = None
    fields: Sequence[str] = ()


def field_path(field: str, device: str | None) -> list[str]:
    """`power.draw_w` -> ["power", "draw_w"]; with a device, one of its readings."""
    if device is not None and not field.startswith(("devices.", "power.", "data.", "backlog.")):
        return ["devices", device, *field.split(".")]
    return field.split(".")


def fetch(conn: psycopg.Connection[Any], query: Query) -> list[dict[str, Any]]:
    """The archived messages the query asks for, oldest first, as the node sent them."""
    where = ["node = %(node)s", "kind = %(kind)s", "ts >= %(since)s", "ts < %(until)s"]
    params: dict[str, Any] = {
        "node": query.node,
        "kind": _KIND[query.what],
        "since": moment(query.since),
        "until": moment(query.until),
    }
    if query.what == "shotlog":
        where.append("body->>'name' LIKE 'take.%%'")
    if query.what == "alarms":
        where.append(ALARM_EVENTS)
    if query.device is not None and query.what in ("events", "shotlog", "alarms"):
        where.append("body->>'source' = %(device)s")
        params["device"] = query.device
    if query.device is not None and query.what == "commands":
        where.append("body->'result'->>'device' = %(device)s")
        params["device"] = query.device
    select = "body"
    if query.what == "telemetry" and query.fields:
        # Only the fields asked for leave the server: a day of a big node's samples is large.
        parts = [f"body #> %(f{i})s" for i in range(len(query.fields))]
        for i, field in enumerate(query.fields):
            params[f"f{i}"] = field_path(field, query.device)
        select = f"jsonb_build_array({', '.join(parts)})"
    sql = (
        f"SELECT seq, extract(epoch FROM ts)::float8, historical, {select} "
        f"FROM cupola_stream WHERE {' AND '.join(where)} ORDER BY ts, seq"
    )
    with conn.cursor() as cur:
        cur.execute(sql, params)
        found = [
            {"v": 1, "node": query.node, "kind": params["kind"], "ts": ts, "seq": seq,
             **({"historical": True} if historical else {}), "body": body}
            for seq, ts, historical, body in cur
        ]  # fmt: skip
    if query.what == "alarms":
        found = sorted(found + actions(conn, query), key=lambda m: m["ts"])
    return found


def actions(conn: psycopg.Connection[Any], query: Query) -> list[dict[str, Any]]:
    """The consoles' acknowledgements and shelves in the range (protocols/alarms.py)."""
    sql = ("SELECT extract(epoch FROM at)::float8, body FROM cupola_alarm_action"
           " WHERE node = %s AND at >= %s AND at < %s"
           + (" AND source = %s" if query.device is not None else "") + " ORDER BY at")  # fmt: skip
    params = [query.node, moment(query.since), moment(query.until)]
    if query.device is not None:
        params.append(query.device)
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return [{"kind": "alarm_action", "ts": ts, "body": body} for ts, body in cur]


def utc(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat(timespec="milliseconds")


def table(query: Query, messages: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Columns and rows for CSV and the terminal."""
    if query.what == "telemetry":
        fields = list(query.fields) or ["power.draw_w"]
        rows = []
        for m in messages:
            values = m["body"] if query.fields else [_dig(m["body"], field_path(f, None))
                                                     for f in fields]  # fmt: skip
            rows.append([utc(m["ts"]), m["seq"], *values])
        return ["time", "seq", *fields], rows
    rows = []
    for m in messages:
        b = m["body"]
        if query.what == "events":
            rows.append([utc(m["ts"]), m["seq"], b["severity"], b["name"], b["source"],
                         b["message"], bool(m.get("historical"))])  # fmt: skip
        elif query.what == "commands":
            rows.append([utc(m["ts"]), m["seq"], b.get("key_id"), b.get("role"), b.get("name"),
                         b["status"], b["reason"]])  # fmt: skip
        elif query.what == "alarms":
            rows.append(_alarm_row(m))
        else:
            d = b.get("data") or {}
            cameras = d.get("cameras") or sorted(d.get("clips") or {})
            rows.append([utc(b["ts"]), m["seq"], b["name"], d.get("scene"), d.get("take"),
                         d.get("take_id"), " ".join(map(str, cameras)), b["message"]])  # fmt: skip
    return _COLUMNS[query.what], rows


def _alarm_row(m: dict[str, Any]) -> list[Any]:
    b = m["body"]
    if m["kind"] == "alarm_action":
        until = utc(b["until"]) if b.get("until") else None
        return [utc(m["ts"]), None, b["action"], b["source"], b["what"], b.get("level") or None,
                b["by"], until, b.get("reason", ""), False]  # fmt: skip
    outcome = b["name"].rpartition(".")[2]
    level = outcome if outcome in ("red", "yellow", "cleared") else b["severity"]
    return [utc(m["ts"]), m["seq"], "event", b["source"], b["name"], level, None, None,
            b["message"], bool(m.get("historical"))]  # fmt: skip


def _dig(body: Any, path: list[str]) -> Any:
    for part in path:
        if not isinstance(body, dict):
            return None
        body = body.get(part)
    return body


def write(
    query: Query, messages: list[dict[str, Any]], form: str, out: io.TextIOBase | Any
) -> None:
    if form == "json":
        for m in messages:
            out.write(json.dumps(m) + "\n")
        return
    columns, rows = table(query, messages)
    if form == "csv":
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows(rows)
        return
    for row in [columns, *rows]:
        out.write("  ".join("" if v is None else str(v) for v in row) + "\n")


def plot(query: Query, messages: list[dict[str, Any]], path: Path) -> None:
    """Every field against time on one chart; each field past the first on an axis of its own
    (a temperature and a wattage share no scale)."""
    from matplotlib.figure import Figure  # noqa: PLC0415 - only --plot needs it; slow to import

    columns, rows = table(query, messages)
    times = [m["ts"] / 86400 for m in messages]  # matplotlib's dates: days since 1970
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    first = fig.subplots()
    lines = []
    for index, name in enumerate(columns[2:]):
        axis = first
        if index:
            axis = first.twinx()
            axis.spines["right"].set_position(("axes", 1 + 0.1 * (index - 1)))
        values = [_number(r[2 + index]) for r in rows]
        lines += axis.plot(times, values, color=f"C{index}", label=name, linewidth=1)
        axis.set_ylabel(name, color=f"C{index}")
    first.xaxis_date()
    first.set_xlabel("UTC")
    first.legend(handles=lines, loc="upper left")
    first.set_title(f"{query.node}: telemetry {utc(query.since)} to {utc(query.until)}")
    fig.savefig(path)


def _number(value: Any) -> float:
    if isinstance(value, bool | int | float):
        return float(value)
    return math.nan  # no reading then: a gap in the line


def run(db_url: str, query: Query, form: str, plot_path: Path | None) -> int:

    with connect(db_url) as conn:
        try:
            messages = fetch(conn, query)
        except psycopg.errors.UndefinedTable:
            raise DataError(
                f"{describe(db_url)} holds no archive: start `cupola archive` on it"
            ) from None
    if plot_path is not None:
        plot(query, messages, plot_path)
        print(f"{len(messages)} samples plotted to {plot_path}", file=sys.stderr)
        return 0
    write(query, messages, form, sys.stdout)
    return 0
