"""The store-and-forward outbox: every event, result and sample, in SQLite, until acknowledged.

A message gets its sequence number the first time it is sent, in the same transaction that
marks it sent, and keeps it: so the numbers the ground sees are contiguous (a message thinned
away never had one) and a message re-sent after a crash or a broken connection carries the
same number, which the ground uses to drop the duplicate. A row is deleted only after the
broker acknowledged it (QoS 1 PUBACK).

Drain order: messages already numbered (in number order), then alarms and command results,
then other events, then routine samples, each oldest first.

Events and command results are queued with `append_soon`: written, all of them in one synced
transaction, at the end of the event loop's turn in which they were queued (and before anything
reads the outbox). A crash can lose only what the turn it interrupted queued, as it would lose
a message queued an instant later; a burst (every device coming online, a shed's events)
costs one write to the platter instead of one each.

Thinning (when the outbox exceeds its size, or the disk runs short of space): the oldest half
of the routine samples not yet sent loses every other sample, halving its time resolution,
repeated until under the low-water mark. Events and command results are never thinned.

When the state disk refuses a write (full, I/O error: `StorageGuard`), nothing raises: new
messages are held in memory, in order, behind which nothing is written until the guard's
probe (`flush_held`) writes them all in one transaction. The memory is bounded (`held_max`):
past it the oldest held routine sample is dropped, and only if there is none the oldest
message (both counted in `held_dropped`). Acknowledgements and the birth counter that could
not be written are kept the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from firmware_host.clock import SYSTEM, Clock
from firmware_host.config import OutboxConfig
from firmware_host.events import EventBus
from firmware_host.storage import open_or_recover
from firmware_host.storage_guard import StorageFault, StorageGuard

log = logging.getLogger(__name__)

# Bodies go to the ground as they are stored, so they are stored as strict JSON: a non-finite
# number (a NaN reading, an inf budget) becomes null, never the `NaN`/`Infinity` that
# json.dumps writes and no JSON parser on the ground accepts.
encode_body = msgspec.json.Encoder().encode

URGENT = -1  # priority of alarms and command results: never thinned, sent before all else
EVENTS = 0  # priority of events: never thinned
ROUTINE = 1  # priority of periodic samples
LOW_WATER = 0.8
EVENT_LOG_KEEP = 100_000
HELD_MAX = 20_000  # messages held in memory while the disk refuses writes (a few MB)

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


@dataclass(frozen=True, slots=True)
class Held:
    """A message the disk would not take yet, as it will be written."""

    kind: str
    priority: int
    created: float
    body: bytes
    event: tuple[float, str, str, str] | None  # its row in the event log, for events


class Outbox:
    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int,
        min_free_bytes: int = 0,
        guard: StorageGuard | None = None,
        held_max: int = HELD_MAX,
        clock: Clock = SYSTEM,
        checked: bool = False,
    ) -> None:
        """`checked`: the file passed its integrity check just now (`CheckAhead`)."""
        self.path = path
        self.clock = clock
        self.db, self.recovery = open_or_recover(path, MIGRATIONS, checked=checked)
        self.max_bytes = max_bytes
        self.min_free_bytes = min_free_bytes
        self.guard = guard if guard is not None else StorageGuard(EventBus())
        self.guard.add_probe(self.flush_held)
        self.held_max = held_max
        self.held_dropped = 0
        self.thinned_total = 0
        self._held: deque[Held] = deque()
        self._acked_unsaved: set[int] = set()  # acknowledged, delete refused by the disk
        self._bd_seq_unsaved: int | None = None  # handed out, not yet written
        self._appends = 0
        self._soon: list[Held] = []  # append_soon's, written at the end of the loop's turn
        self._bytes = self._stored_bytes()

    @classmethod
    def configured(
        cls,
        path: Path,
        limits: OutboxConfig,
        *,
        guard: StorageGuard | None = None,
        clock: Clock = SYSTEM,
        checked: bool = False,
    ) -> Outbox:
        """The outbox `[outbox]` describes (its limits in MB)."""
        return cls(
            path,
            max_bytes=round(limits.max_mb * 1e6),
            min_free_bytes=round(limits.min_free_mb * 1e6),
            guard=guard,
            clock=clock,
            checked=checked,
        )

    def close(self) -> None:
        """Close, writing what is held in memory first if the disk takes it by now."""
        self.write_queued()
        with contextlib.suppress(StorageFault):
            self.flush_held()
        if self._held:
            log.critical(
                "%s: %d messages held in memory are lost: the disk still refuses writes",
                self.path, len(self._held),
            )  # fmt: skip
        self.db.close()

    # -- appending -------------------------------------------------------------------------

    def append(
        self, kind: str, body: dict[str, Any] | msgspec.Struct, priority: int = EVENTS
    ) -> int:
        """Queue one message durably (or in memory while the disk refuses writes); returns
        how many routine samples were thinned for it."""
        self.write_queued()  # what was queued before it goes first
        return self._write([self._message(kind, body, priority)])

    def append_soon(
        self, kind: str, body: dict[str, Any] | msgspec.Struct, priority: int = EVENTS
    ) -> None:
        """Queue one message durably at the end of this turn of the event loop, in one
        transaction with everything else queued in it: 64 devices coming online together,
        or a shed's events, cost one synced write rather than one each. Whatever reads the
        outbox writes them first. Outside an event loop (set-up), written at once."""
        self._soon.append(self._message(kind, body, priority))
        if len(self._soon) > 1:
            return
        try:
            asyncio.get_running_loop().call_soon(self.write_queued)
        except RuntimeError:
            self.write_queued()

    def write_queued(self) -> None:
        """Write what `append_soon` queued (no-op if nothing is)."""
        if not self._soon:
            return
        queued, self._soon = self._soon, []
        thinned = self._write(queued)
        if thinned:
            log.warning("outbox over its limit: %d routine samples thinned", thinned)

    def _message(self, kind: str, body: dict[str, Any] | msgspec.Struct, priority: int) -> Held:
        data = encode_body(body)
        now = self.clock.wall()
        event = None
        if kind == "event" and isinstance(body, dict):
            event = (body.get("ts", now), body.get("name", ""), body.get("severity", ""),
                     body.get("source", ""))  # fmt: skip
        return Held(kind, priority, now, data, event)

    def _write(self, messages: list[Held]) -> int:
        """One transaction for `messages`, or all of them held while the disk refuses."""
        if self._held:  # behind messages already waiting: keep the order
            for message in messages:
                self._hold(message)
            return 0
        try:
            with self.guard.using(self.path, self.db), self.db:
                self.db.execute("BEGIN IMMEDIATE")
                self._insert(messages)
        except StorageFault:
            for message in messages:
                self._hold(message)
            return 0
        self._bytes += sum(len(m.body) for m in messages)
        before, self._appends = self._appends, self._appends + len(messages)
        if before // 1000 != self._appends // 1000:
            self._trim_event_log()
        return self._thin_if_needed()

    def _insert(self, messages: list[Held]) -> None:
        self.db.executemany(
            "INSERT INTO outbox (kind, priority, created, body) VALUES (?, ?, ?, ?)",
            [(m.kind, m.priority, m.created, m.body) for m in messages],
        )
        self.db.executemany(
            "INSERT INTO events (ts, name, severity, source, body) VALUES (?, ?, ?, ?, ?)",
            [(*m.event, m.body) for m in messages if m.event is not None],
        )

    def _hold(self, message: Held) -> None:
        if len(self._held) >= self.held_max:
            routine = next((m for m in self._held if m.priority == ROUTINE), None)
            self._held.remove(routine if routine is not None else self._held[0])
            self.held_dropped += 1
        self._held.append(message)

    def flush_held(self) -> str:
        """Write everything held back, in one transaction (the storage guard's probe).

        Always writes something, so a probe with nothing held still proves the disk takes
        writes. Raises StorageFault while it does not.
        """
        self.write_queued()  # joins the held ones if the disk still refuses
        held = list(self._held)
        acked = sorted(self._acked_unsaved)
        with self.guard.using(self.path, self.db), self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self._insert(held)
            self._delete(acked)
            self.db.execute(
                "UPDATE meta SET value = MAX(value, ?) WHERE key = 'bd_seq'",
                (self._bd_seq_unsaved or 0,),
            )
        self._bytes = self._stored_bytes()
        for _ in held:
            self._held.popleft()
        self._acked_unsaved.difference_update(acked)
        self._bd_seq_unsaved = None
        dropped, self.held_dropped = self.held_dropped, 0
        if not held and not dropped:
            return ""
        return f"{len(held)} messages held in memory written to {self.path.name}" + (
            f", {dropped} dropped (memory full)" if dropped else ""
        )

    def _trim_event_log(self) -> None:
        try:
            with self.guard.using(self.path, self.db), self.db:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.execute(
                    "DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?",
                    (EVENT_LOG_KEEP,),
                )
        except StorageFault:
            return  # trimmed on a later append

    def recent_events(self, limit: int, min_severity: str | None = None) -> list[dict[str, Any]]:
        """The onboard event log, newest first (it outlives the outbox rows)."""
        self.write_queued()
        severities = ("diagnostic", "info", "warning", "critical")
        wanted = severities[severities.index(min_severity) :] if min_severity else severities
        held = [m.body for m in reversed(self._held) if m.event and m.event[2] in wanted]
        rows = self.db.execute(
            f"SELECT body FROM events WHERE severity IN ({','.join('?' * len(wanted))})"
            " ORDER BY id DESC LIMIT ?",
            (*wanted, limit),
        )
        return [json.loads(body) for body in [*held, *(row[0] for row in rows)][:limit]]

    def append_many(self, kind: str, bodies: list[dict[str, Any]], priority: int) -> None:
        """Queue a batch in one transaction (bulk loads, benchmarks)."""
        self.write_queued()
        now = self.clock.wall()
        rows = [(kind, priority, now, encode_body(b)) for b in bodies]
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany(
                "INSERT INTO outbox (kind, priority, created, body) VALUES (?, ?, ?, ?)", rows
            )
        self._bytes += sum(len(r[3]) for r in rows)

    # -- draining --------------------------------------------------------------------------

    def next_batch(
        self, limit: int, *, after_seq: int = 0, urgent_only: bool = False
    ) -> list[Pending]:
        """Up to `limit` messages in sending order, numbering those sent for the first time;
        none while the disk refuses the numbering (they wait, in order). `after_seq`: skip
        the numbered rows up to it (in flight on this connection, not yet acknowledged).
        `urgent_only`: of the rows not numbered yet, only alarms and command results."""
        self.write_queued()
        try:
            with self.guard.using(self.path, self.db), self.db:
                self.db.execute("BEGIN IMMEDIATE")
                rows = self._number_batch(
                    limit + len(self._acked_unsaved),
                    after_seq,
                    URGENT if urgent_only else ROUTINE,  # ROUTINE, the lowest: every row
                )
        except StorageFault:
            return []
        return [row for row in rows if row.id not in self._acked_unsaved][:limit]

    def _number_batch(self, limit: int, after_seq: int, lowest: int) -> list[Pending]:
        numbered = self.db.execute(
            "SELECT id, kind, created, body, seq FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        room = limit - len(numbered)
        fresh: list[tuple[Any, ...]] = []
        if room > 0:
            # INDEXED BY: left to itself the planner looks the NULLs up in seq's own index and
            # sorts every unsent row for each batch (10 ms a batch at 30,000 queued, growing).
            fresh = self.db.execute(
                "SELECT id, kind, created, body FROM outbox INDEXED BY outbox_unsent"
                " WHERE seq IS NULL AND priority <= ? ORDER BY priority, id LIMIT ?",
                (lowest, room),
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
                    "UPDATE meta SET value = ? WHERE key = 'next_seq'", (next_seq + len(fresh),)
                )
        return [Pending(*row) for row in [*numbered, *fresh]]

    def acknowledged(self, ids: list[int]) -> None:
        """Forget what the broker acknowledged. Not synced to the platter (WAL, synchronous
        NORMAL): a power cut may bring back the last deletions, and those messages go out
        again with their own numbers, which the ground drops as duplicates. Appends and
        numbering stay fully synced: nothing queued is lost, no number is given twice."""
        if not ids:
            return
        try:
            with self.guard.using(self.path, self.db):
                self.db.execute("PRAGMA synchronous=NORMAL")
                try:
                    with self.db:
                        self.db.execute("BEGIN IMMEDIATE")
                        freed = self._delete(ids)
                finally:
                    self.db.execute("PRAGMA synchronous=FULL")
        except StorageFault:
            self._acked_unsaved.update(ids)  # deleted by flush_held; never sent again
            return
        self._bytes -= freed

    def _delete(self, ids: list[int]) -> int:
        if not ids:
            return 0
        freed = self.db.execute(
            f"SELECT COALESCE(SUM(LENGTH(body)), 0) FROM outbox WHERE id IN "
            f"({','.join('?' * len(ids))})",
            ids,
        ).fetchone()[0]
        self.db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])
        return int(freed)

    def backlog(self) -> dict[str, int]:
        self.write_queued()
        # Counted by priority only: grouped together with the bodies' lengths, SQLite sorted the
        # bodies themselves (150 ms on a full 64 MB outbox, every birth, link notice and
        # telemetry sample, with the event loop stopped). The bytes are the running total kept
        # at every insert and delete (what thinning goes by), not summed again (4 ms more).
        counts: dict[int, int] = dict(
            self.db.execute("SELECT priority, COUNT(*) FROM outbox GROUP BY priority").fetchall()
        )
        next_seq = self.db.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()[0]
        return {
            "last_seq": next_seq - 1,  # the last sequence number given to a message
            "messages": sum(counts.values()),
            "bytes": self._bytes,
            "events": counts.get(URGENT, 0) + counts.get(EVENTS, 0),
            "samples": counts.get(ROUTINE, 0),
            "thinned": self.thinned_total,
            "held": len(self._held),  # in memory: the disk refused them so far
        }

    # -- counters the session needs across restarts ---------------------------------------

    @property
    def stream_id(self) -> int:
        """Names this numbering of seq and bd_seq: the ground resets its count when it changes."""
        value: int = self.db.execute("SELECT value FROM meta WHERE key = 'stream_id'").fetchone()[0]
        return value

    def next_bd_seq(self) -> int:
        try:
            with self.guard.using(self.path, self.db), self.db:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.execute(
                    "UPDATE meta SET value = MAX(value, ?) + 1 WHERE key = 'bd_seq'",
                    (self._bd_seq_unsaved or 0,),
                )
                value: int = self.db.execute(
                    "SELECT value FROM meta WHERE key = 'bd_seq'"
                ).fetchone()[0]
        except StorageFault:  # a session still starts: the number is written by flush_held
            stored = self.db.execute("SELECT value FROM meta WHERE key = 'bd_seq'").fetchone()[0]
            self._bd_seq_unsaved = max(stored, self._bd_seq_unsaved or 0) + 1
            return self._bd_seq_unsaved
        self._bd_seq_unsaved = None
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
                "SELECT id FROM outbox INDEXED BY outbox_unsent"
                " WHERE priority = ? AND seq IS NULL ORDER BY id",
                (ROUTINE,),
            )
            if row[0] not in self._acked_unsaved
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
