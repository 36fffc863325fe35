"""The archive's tables: time-partitioned by day, idempotent on what identifies a message.

`stream`: events, telemetry and results, one row per (node, stream, seq). The node keeps a
message's `ts` (the time it was queued) with its number when it sends it again, so the
primary key (node, stream, seq, ts) holds each seq once, whichever archive or resend wrote it
first; PostgreSQL requires the partition key in every unique key of a partitioned table.
`session`: births, deaths, link notices and retained device states, one row per
(node, topic, ts): the same retained message seen again on every subscription is one row.
`alarm_action`: the consoles' acknowledgements and shelves (protocols/alarms.py), once each:
the alarm history beside the node's own alarm events. Few rows: not partitioned.

Partitions are one UTC day each, created on first use under an advisory lock, so several
archives on several machines may share one database; queries over a day or a pass touch
only its partitions, so a 12-day shoot and the next stay fast.
"""

from __future__ import annotations

import datetime

import psycopg
from psycopg.rows import TupleRow

SCHEMA = """
CREATE TABLE IF NOT EXISTS cupola_stream (
    node text NOT NULL,
    stream bigint NOT NULL,
    seq bigint NOT NULL,
    kind text NOT NULL,
    ts timestamptz NOT NULL,
    received timestamptz NOT NULL,
    historical boolean NOT NULL,
    body jsonb NOT NULL,
    PRIMARY KEY (node, stream, seq, ts)
) PARTITION BY RANGE (ts);
CREATE INDEX IF NOT EXISTS cupola_stream_by_time ON cupola_stream (node, kind, ts);
CREATE TABLE IF NOT EXISTS cupola_session (
    node text NOT NULL,
    topic text NOT NULL,
    kind text NOT NULL,
    ts timestamptz NOT NULL,
    received timestamptz NOT NULL,
    bd_seq bigint,
    stream bigint,
    body jsonb NOT NULL,
    PRIMARY KEY (node, topic, ts)
) PARTITION BY RANGE (ts);
CREATE TABLE IF NOT EXISTS cupola_alarm_action (
    node text NOT NULL,
    source text NOT NULL,
    what text NOT NULL,
    action text NOT NULL,
    by_key text NOT NULL,
    at timestamptz NOT NULL,
    received timestamptz NOT NULL,
    body jsonb NOT NULL,
    PRIMARY KEY (node, source, what, at, by_key, action)
);
"""

PARTITIONED = ("cupola_stream", "cupola_session")
_LOCK = 0x637570_6F6C61  # "cupola": serialises schema changes between archives


async def create(conn: psycopg.AsyncConnection[TupleRow]) -> None:
    """The tables, if missing (any number of archives may start at once)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        await conn.execute(SCHEMA)


def day_of(moment: datetime.datetime) -> datetime.date:
    return moment.astimezone(datetime.UTC).date()


def partition_ddl(table: str, day: datetime.date) -> str:
    start = datetime.datetime.combine(day, datetime.time(), datetime.UTC)
    end = start + datetime.timedelta(days=1)
    return (
        f"CREATE TABLE IF NOT EXISTS {table}_{day:%Y%m%d} PARTITION OF {table} "
        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    )


class Partitions:
    """Remembers the days already there; creates a missing one in the caller's transaction."""

    def __init__(self) -> None:
        self.known: set[tuple[str, datetime.date]] = set()

    async def ensure(
        self, conn: psycopg.AsyncConnection[TupleRow], table: str, days: set[datetime.date]
    ) -> None:
        missing = {day for day in days if (table, day) not in self.known}
        if not missing:
            return
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        for day in sorted(missing):
            await conn.execute(partition_ddl(table, day))
        self.known.update((table, day) for day in missing)

    def forget(self) -> None:
        """After a rolled-back transaction: what it created is gone again."""
        self.known.clear()
