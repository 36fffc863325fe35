"""The store-and-forward outbox: every event, result and sample, in SQLite, until acknowledged.

A message gets its sequence number the first time it is sent, in the same transaction that
marks it sent, and keeps it: so the numbers the ground sees are contiguous (a message thinned
away never had one) and a message re-sent after a crash or a broken connection carries the
same number, which the ground uses to drop the duplicate. A row is deleted only after the
broker acknowledged it (QoS 1 PUBACK).

Drain order: messages already numbered (in number order), then events and results, then
routine samples, each oldest first.

Thinning (when the outbox exceeds its size, or the disk runs short of space): the oldest half
of the routine samples not yet sent loses every other sample, halving its time resolution,
repeated until under the low-water mark. Events and command results are never thinned.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from firmware_host.storage import open_database

# Bodies go to the ground as they are stored, so they are stored as strict JSON: a non-finite
# number (a NaN reading, an inf budget) becomes null, never the `NaN`/`Infinity` that
# json.dumps writes and no JSON parser on the ground accepts.
encode_body = msgspec.json.Encoder().encode

EVENTS = 0  # priority of events and results: never thinned, sent first
ROUTINE = 1  # priority of periodic samples
LOW_WATER = 0.8
EVENT_LOG_KEEP = 100_000

MIGRATIONS = [
    """
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        priority INTEGER NOT NULL,
        created REAL NOT NULL,
        body BLOB NOT NULL,
        seq INTEGER UNIQUE
    );
    CREATE INDEX outbox_unsent ON outbox(priority, id) WHERE seq IS NULL;
    CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO meta VALUES ('next_seq', 1), ('bd_seq', 0);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        name TEXT NOT NULL,
        severity TEXT NOT NULL,
        source TEXT NOT NULL,
        body BLOB NOT NULL
    );
    """,
    # The stream's identity: a new one only with a new database, when numbering restarts.
    "INSERT INTO meta VALUES ('stream_id', abs(random() % 9007199254740992));",
]


@dataclass(frozen=True, slots=True)
class Pending:
    id: int
    kind: str
    created: float
    body: bytes
    seq: int


class Outbox:
    def __init__(self, path: Path, *, max_bytes: int, min_free_bytes: int = 0) -> None:
        self.path = path
        self.db = open_database(path, MIGRATIONS)
        self.max_bytes = max_bytes
        self.min_free_bytes = min_free_bytes
        self.thinned_total = 0
        self._appends = 0
        self._bytes = self._stored_bytes()

    def close(self) -> None:
        self.db.close()

    # -- appending -------------------------------------------------------------------------

    def append(self, kind: str, body: dict[str, Any], priority: int = EVENTS) -> int:
        """Queue one message durably; returns how many routine samples were thinned for it."""
        data = encode_body(body)
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT INTO outbox (kind, priority, created, body) VALUES (?, ?, ?, ?)",
                (kind, priority, time.time(), data),
            )
            if kind == "event":
                self.db.execute(
                    "INSERT INTO events (ts, name, severity, source, body) VALUES (?, ?, ?, ?, ?)",
                    (body.get("ts", time.time()), body.get("name", ""),
                     body.get("severity", ""), body.get("source", ""), data),
                )  # fmt: skip
        self._bytes += len(data)
        self._appends += 1
        if self._appends % 1000 == 0:
            self._trim_event_log()
        return self._thin_if_needed()

    def _trim_event_log(self) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?",
                (EVENT_LOG_KEEP,),
            )

    def recent_events(self, limit: int, min_severity: str | None = None) -> list[dict[str, Any]]:
        """The onboard event log, newest first (it outlives the outbox rows)."""
        severities = ("diagnostic", "info", "warning", "critical")
        wanted = severities[severities.index(min_severity) :] if min_severity else severities
        rows = self.db.execute(
            f"SELECT body FROM events WHERE severity IN ({','.join('?' * len(wanted))})"
            " ORDER BY id DESC LIMIT ?",
            (*wanted, limit),
        )
        return [json.loads(row[0]) for row in rows]

    def append_many(self, kind: str, bodies: list[dict[str, Any]], priority: int) -> None:
        """Queue a batch in one transaction (bulk loads, benchmarks)."""
        now = time.time()
        rows = [(kind, priority, now, encode_body(b)) for b in bodies]
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany(
                "INSERT INTO outbox (kind, priority, created, body) VALUES (?, ?, ?, ?)", rows
            )
        self._bytes += sum(len(r[3]) for r in rows)

    # -- draining --------------------------------------------------------------------------

    def next_batch(self, limit: int) -> list[Pending]:
        """Up to `limit` messages in sending order, numbering those sent for the first time."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            numbered = self.db.execute(
                "SELECT id, kind, created, body, seq FROM outbox WHERE seq IS NOT NULL"
                " ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
            room = limit - len(numbered)
            fresh: list[tuple[Any, ...]] = []
            if room > 0:
                fresh = self.db.execute(
                    "SELECT id, kind, created, body FROM outbox WHERE seq IS NULL"
                    " ORDER BY priority, id LIMIT ?",
                    (room,),
                ).fetchall()
                if fresh:
                    next_seq = self.db.execute(
                        "SELECT value FROM meta WHERE key = 'next_seq'"
                    ).fetchone()[0]
                    fresh = [(*row, next_seq + i) for i, row in enumerate(fresh)]
                    self.db.executemany(
                        "UPDATE outbox SET seq = ? WHERE id = ?", [(r[4], r[0]) for r in fresh]
                    )
                    self.db.execute(
                        "UPDATE meta SET value = ? WHERE key = 'next_seq'",
                        (next_seq + len(fresh),),
                    )
        return [Pending(*row) for row in [*numbered, *fresh]]

    def acknowledged(self, ids: list[int]) -> None:
        if not ids:
            return
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            freed = self.db.execute(
                f"SELECT COALESCE(SUM(LENGTH(body)), 0) FROM outbox WHERE id IN "
                f"({','.join('?' * len(ids))})",
                ids,
            ).fetchone()[0]
            self.db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])
        self._bytes -= int(freed)

    def backlog(self) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT priority, COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM outbox"
            " GROUP BY priority"
        ).fetchall()
        counts = {p: (n, b) for p, n, b in rows}
        next_seq = self.db.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()[0]
        return {
            "last_seq": next_seq - 1,  # the last sequence number given to a message
            "messages": sum(n for n, _ in counts.values()),
            "bytes": sum(b for _, b in counts.values()),
            "events": counts.get(EVENTS, (0, 0))[0],
            "samples": counts.get(ROUTINE, (0, 0))[0],
            "thinned": self.thinned_total,
        }

    # -- counters the session needs across restarts ---------------------------------------

    @property
    def stream_id(self) -> int:
        """Names this numbering of seq and bd_seq: the ground resets its count when it changes."""
        value: int = self.db.execute("SELECT value FROM meta WHERE key = 'stream_id'").fetchone()[0]
        return value

    def next_bd_seq(self) -> int:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("UPDATE meta SET value = value + 1 WHERE key = 'bd_seq'")
            value: int = self.db.execute("SELECT value FROM meta WHERE key = 'bd_seq'").fetchone()[
                0
            ]
        return value

    # -- thinning --------------------------------------------------------------------------

    def _short_of_space(self) -> bool:
        if self._bytes > self.max_bytes:
            return True
        if self.min_free_bytes:
            return shutil.disk_usage(self.path.parent).free < self.min_free_bytes
        return False

    def _thin_if_needed(self) -> int:
        removed = 0
        while self._short_of_space() and self._bytes > LOW_WATER * self.max_bytes:
            step = self._thin_once()
            if not step:
                break  # only events left: they are kept whatever it costs
            removed += step
        self.thinned_total += removed
        return removed

    def _thin_once(self) -> int:
        ids = [
            row[0]
            for row in self.db.execute(
                "SELECT id FROM outbox WHERE priority = ? AND seq IS NULL ORDER BY id", (ROUTINE,)
            )
        ]
        oldest_half = ids[: max(2, len(ids) // 2)] if len(ids) >= 2 else []
        doomed = oldest_half[1::2]
        if not doomed:
            return 0
        self.acknowledged(doomed)
        return len(doomed)

    def _stored_bytes(self) -> int:
        value: int = self.db.execute(
            "SELECT COALESCE(SUM(LENGTH(body)), 0) FROM outbox"
        ).fetchone()[0]
        return value
