"""The monitor's view filled from the archive (`cupola archive`'s database).

Live with `--db`: on start, the last hour the archive holds, so the tables and the power
sparkline are full at once; after a gap in the stream (the monitor was cut off longer than
its broker session lasted), the missing numbers, which the archive's own session kept.
Replay (`--replay postgresql://...`): a time range, as a capture file would give it.

Each archived message goes back into the view as the bytes the node sent, on its topic, at
the time the archive received it: the view cannot tell it from a live message or a capture.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import psycopg

from protocols import alarms, ground
from tools.archive.rows import moment

FILL_S = 3600.0  # how far back a live monitor fills on start

_STREAM = """
SELECT extract(epoch FROM received)::float8, kind, seq, extract(epoch FROM ts)::float8,
       historical, body::text
FROM cupola_stream WHERE node = %(node)s AND ts >= %(since)s AND ts < %(until)s {extra}
"""
_SESSION = """
SELECT extract(epoch FROM received)::float8, topic, kind, extract(epoch FROM ts)::float8,
       bd_seq, stream, body::text
FROM cupola_session WHERE node = %(node)s AND ts >= %(since)s AND ts < %(until)s
"""
_ACTIONS = """
SELECT extract(epoch FROM received)::float8, source, what, action, body::text
FROM cupola_alarm_action WHERE node = %(node)s AND at >= %(since)s AND at < %(until)s
"""


@dataclass(frozen=True, order=True)
class Archived:
    received: float
    topic: str
    payload: bytes


def _envelope(node: str, kind: str, ts: float, body: str, **extra: Any) -> bytes:
    fields = {k: v for k, v in extra.items() if v is not None and v is not False}
    head = json.dumps({"v": ground.SCHEMA_VERSION, "node": node, "kind": kind, "ts": ts, **fields})
    return (head[:-1] + ', "body": ' + body + "}").encode()


def messages(conn: psycopg.Connection[Any], node: str, since: float,
             until: float) -> list[Archived]:  # fmt: skip
    """Everything archived for `node` between the two times, in the order it was received."""
    span = {"node": node, "since": moment(since), "until": moment(until)}
    out = _stream_rows(conn, _STREAM.format(extra=""), span, node)
    for received, topic, kind, ts, bd_seq, stream, body in conn.execute(_SESSION, span):
        payload = _envelope(node, kind, ts, body, bd_seq=bd_seq, stream=stream)
        out.append(Archived(received, ground.topic(node, *topic.split("/")), payload))
    for received, source, what, action, body in conn.execute(_ACTIONS, span):
        out.append(Archived(received, alarms.topic(node, source, what, action), body.encode()))
    return sorted(out)


def missing(conn: psycopg.Connection[Any], node: str, stream: int | None,
            gaps: list[tuple[int, int]]) -> list[Archived]:  # fmt: skip
    """The stream messages numbered in `gaps` that the archive holds."""
    if not gaps:
        return []
    ranges = " OR ".join(f"seq BETWEEN {int(a)} AND {int(b)}" for a, b in gaps)
    extra = f"AND ({ranges})" + (" AND stream = %(stream)s" if stream is not None else "")
    span = {"node": node, "since": moment(0), "until": moment(2**33), "stream": stream}
    return sorted(_stream_rows(conn, _STREAM.format(extra=extra), span, node))


def _stream_rows(
    conn: psycopg.Connection[Any], sql: str, params: dict[str, Any], node: str
) -> list[Archived]:
    out = []
    for received, kind, seq, ts, historical, body in conn.execute(sql, params):
        payload = _envelope(node, kind, ts, body, seq=seq, historical=historical)
        out.append(Archived(received, ground.topic(node, kind), payload))
    return out
