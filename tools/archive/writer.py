"""Writes rows in batches, one transaction each, with COPY (PostgreSQL's fastest way in).

A batch is copied straight into its table. If any of its rows is there already (a resend, a
broker's redelivery, another archive that wrote it first), the primary key refuses the COPY;
the batch then goes into a staging table and on with INSERT ... ON CONFLICT DO NOTHING, so
the rows already there cost only the lookup. Both paths insert in key order: two archives
writing the same rows wait for each other instead of deadlocking.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from tools.archive import schema
from tools.archive.rows import AlarmRow, Row, SessionRow, StreamRow

STREAM_COLUMNS = "node, stream, seq, kind, ts, received, historical, body"
SESSION_COLUMNS = "node, topic, kind, ts, received, bd_seq, stream, body"
STREAM_KEY = "node, stream, seq, ts"
SESSION_KEY = "node, topic, ts"
ALARM_COLUMNS = "node, source, what, action, by_key, at, received, body"
ALARM_KEY = "node, source, what, at, by_key, action"
_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS stage_stream (LIKE cupola_stream) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_session (LIKE cupola_session) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_alarm (LIKE cupola_alarm_action) ON COMMIT DELETE ROWS;
"""


class Writer:
    """One connection's writer; `write` commits a batch or raises (nothing half-written)."""

    def __init__(self, conn: psycopg.AsyncConnection[TupleRow]) -> None:
        self.conn = conn
        self.partitions = schema.Partitions()
        self.written = 0  # rows new to the archive
        self.duplicates = 0  # rows it had already (a resend, or another archive's)

    @classmethod
    async def connect(cls, url: str) -> Writer:
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=5)
        await schema.create(conn)
        await conn.execute(_STAGING)
        return cls(conn)

    async def close(self) -> None:
        await self.conn.close()

    async def write(self, rows: Sequence[Row]) -> int:
        """Commit `rows`; returns how many were new."""
        streams = [r for r in rows if isinstance(r, StreamRow)]
        sessions = [r for r in rows if isinstance(r, SessionRow)]
        actions = [r for r in rows if isinstance(r, AlarmRow)]
        try:
            async with self.conn.transaction():
                new = await self._insert(
                    "cupola_stream", "stage_stream", STREAM_COLUMNS, STREAM_KEY, streams
                )
                new += await self._insert(
                    "cupola_session", "stage_session", SESSION_COLUMNS, SESSION_KEY, sessions
                )
                new += await self._insert(
                    "cupola_alarm_action", "stage_alarm", ALARM_COLUMNS, ALARM_KEY, actions
                )
        except BaseException:
            self.partitions.forget()
            raise
        self.written += new
        self.duplicates += len(rows) - new
        return new

    async def _insert(
        self,
        table: str,
        stage: str,
        columns: str,
        key: str,
        rows: Sequence[StreamRow] | Sequence[SessionRow] | Sequence[AlarmRow],
    ) -> int:
        """COPY straight in; only a batch holding a row the archive has already goes through
        the staging table (a resend, or another archive that wrote it first)."""
        if not rows:
            return 0
        if table in schema.PARTITIONED:
            await self.partitions.ensure(self.conn, table, {schema.day_of(r.ts) for r in rows})
        ordered = sorted(r.values() for r in rows)  # key order: no deadlock between archives
        try:
            async with self.conn.transaction():  # a savepoint
                await self._copy(f"COPY {table} ({columns}) FROM STDIN", ordered)
        except psycopg.errors.UniqueViolation:
            pass
        else:
            return len(ordered)
        await self._copy(f"COPY {stage} ({columns}) FROM STDIN", ordered)
        async with self.conn.cursor() as cur:
            await cur.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage} "
                f"ORDER BY {key} ON CONFLICT DO NOTHING"
            )
            return cur.rowcount

    async def _copy(self, statement: str, values: list[tuple[Any, ...]]) -> None:
        async with self.conn.cursor() as cur, cur.copy(statement) as copy:
            for row in values:
                await copy.write_row(row)
