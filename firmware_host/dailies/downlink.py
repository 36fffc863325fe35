"""Files to the ground over the bulk allocation: segmented, acknowledged, resumable.

The queue (SQLite, `downlink.db`) holds each file to send, its priority and the segments the
ground has acknowledged; it survives `kill -9`, so a restarted daemon sends only what was
never acknowledged. The sender takes the highest-priority file with a segment neither
acknowledged nor recently sent, spends the window's allocation on it and publishes it (QoS 0).
A segment is sent again when the ground's acknowledgement shows a gap before segments sent
after it (lost on the way: MQTT keeps order), or when none came for `resend_after_s` (the
link dropped; doubled after each such resend, up to 16x, so a ground that is not listening
does not cost the whole allocation). Once every segment is acknowledged the ground checks
the whole file's xxh64 against the MHL hash and says `verified` (done) or `restart` (all of
it again).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from firmware_host.commands.dispatcher import CommandRejected, CommandSpec
from firmware_host.dailies.allocation import BulkAllocator
from firmware_host.events import EventBus
from firmware_host.storage import open_database
from protocols import filelink
from protocols.filelink import Chunk, FileAck, FileMeta
from protocols.messages.common import Severity

MIGRATIONS = [
    """
    CREATE TABLE files (
        file_id INTEGER PRIMARY KEY AUTOINCREMENT,
        path TEXT NOT NULL,
        meta BLOB NOT NULL,
        priority INTEGER NOT NULL,
        queued_at REAL NOT NULL,
        acked BLOB NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('queued', 'delivered'))
    );
    """,
]

Publish = Callable[[str, bytes, int], Awaitable[bool]]  # leaf, payload, qos -> sent
MAX_BACKOFF_DOUBLINGS = 4  # an unanswered segment waits at most 16 x resend_after_s


@dataclass
class Outgoing:
    file_id: int
    path: Path
    meta: FileMeta
    priority: int
    acked: bytearray  # a bit per segment

    def has(self, index: int) -> bool:
        return bool(self.acked[index // 8] & (1 << (index % 8)))

    def mark(self, index: int) -> bool:
        """Acknowledge a segment; True if it was not already."""
        if self.has(index):
            return False
        self.acked[index // 8] |= 1 << (index % 8)
        return True

    def acked_count(self) -> int:
        return sum(bin(b).count("1") for b in self.acked)

    def complete(self) -> bool:
        return self.acked_count() >= self.meta.chunks


class FileQueue:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = open_database(path, MIGRATIONS)
        self.db.row_factory = sqlite3.Row

    def close(self) -> None:
        self.db.close()

    def add(self, path: Path, meta: FileMeta, priority: int, queued_at: float) -> int:
        """Queue `path` (its meta's file_id is assigned here); returns the file id."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            cursor = self.db.execute(
                "INSERT INTO files (path, meta, priority, queued_at, acked, state)"
                " VALUES (?, '', ?, ?, ?, 'queued')",
                (str(path), priority, queued_at, bytes((meta.chunks + 7) // 8)),
            )
            file_id = int(cursor.lastrowid or 0)
            meta.file_id = file_id
            self.db.execute(
                "UPDATE files SET meta = ? WHERE file_id = ?",
                (msgspec.json.encode(meta), file_id),
            )
        return file_id

    def outgoing(self) -> list[Outgoing]:
        rows = self.db.execute(
            "SELECT * FROM files WHERE state = 'queued' ORDER BY priority, file_id"
        ).fetchall()
        return [
            Outgoing(r["file_id"], Path(r["path"]), filelink.meta_decode(r["meta"]),
                     r["priority"], bytearray(r["acked"]))
            for r in rows
        ]  # fmt: skip

    def save_acks(self, item: Outgoing) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "UPDATE files SET acked = ? WHERE file_id = ?", (bytes(item.acked), item.file_id)
            )

    def delivered(self, file_id: int) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("UPDATE files SET state = 'delivered' WHERE file_id = ?", (file_id,))

    def delivered_count(self) -> int:
        return int(
            self.db.execute("SELECT COUNT(*) FROM files WHERE state = 'delivered'").fetchone()[0]
        )


class FileSender:
    def __init__(
        self,
        queue: FileQueue,
        allocator: BulkAllocator,
        publish: Publish,
        link_up: Callable[[], bool],
        bus: EventBus,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        resend_after_s: float = 5.0,
    ) -> None:
        """`clock` times resends and pacing; `wall` stamps when a file was queued, and its
        day."""
        self.queue = queue
        self.allocator = allocator
        self.publish = publish
        self.link_up = link_up
        self.bus = bus
        self.clock = clock
        self.wall = wall
        self.resend_after_s = resend_after_s
        self.files = {f.file_id: f for f in queue.outgoing()}
        self.sent_at: dict[tuple[int, int], float] = {}  # in flight: not yet acknowledged
        self.timeouts: dict[tuple[int, int], int] = {}  # resends for want of any answer
        self.meta_sent: set[int] = set()
        self.chunks_sent = 0  # segments published since start (resends included)
        self.bytes_sent = 0
        self.resent = 0
        self._wakeup = asyncio.Event()

    # -- queueing --------------------------------------------------------------------------

    def enqueue(
        self, path: Path, *, name: str, folder: str, xxh64: str, chunk_bytes: int,
        priority: int = 0, kind: str = "proxy", take_id: int | None = None,
        day: datetime.date | None = None,
    ) -> int:  # fmt: skip
        size = path.stat().st_size
        queued_at = self.wall()
        day = day or datetime.datetime.fromtimestamp(queued_at, datetime.UTC).date()
        meta = FileMeta(
            file_id=1, name=name, folder=folder, day=day.isoformat(),
            size=size, chunk_bytes=chunk_bytes, chunks=-(-size // chunk_bytes), xxh64=xxh64,
            kind=kind, take_id=take_id,
        )  # fmt: skip
        file_id = self.queue.add(path, meta, priority, queued_at)
        self.files[file_id] = Outgoing(file_id, path, meta, priority,
                                       bytearray((meta.chunks + 7) // 8))  # fmt: skip
        self.bus.emit("downlink.queued", Severity.INFO,
                      f"{folder}/{name} queued for the ground ({size / 1e6:.2f} MB, "
                      f"priority {priority})", file_id=file_id, size=size)  # fmt: skip
        self._wakeup.set()
        return file_id

    # -- sending ---------------------------------------------------------------------------

    def _next(self) -> tuple[Outgoing, int] | None:
        now = self.clock()
        for item in sorted(self.files.values(), key=lambda f: (f.priority, f.file_id)):
            for index in range(item.meta.chunks):
                if item.has(index):
                    continue
                sent = self.sent_at.get((item.file_id, index))
                if sent is None or now - sent >= self._patience((item.file_id, index)):
                    return item, index
        return None

    def _patience(self, key: tuple[int, int]) -> float:
        """How long an unanswered segment waits before going again: doubling with each
        resend that got no answer (nobody receiving: the allocation is not spent in vain)."""
        doublings = min(self.timeouts.get(key, 0), MAX_BACKOFF_DOUBLINGS)
        return self.resend_after_s * float(2**doublings)

    def _earliest_resend(self) -> float | None:
        if not self.sent_at:
            return None
        due = min(sent + self._patience(key) for key, sent in self.sent_at.items())
        return max(0.01, due - self.clock())

    async def _wait(self, timeout: float | None) -> None:
        """Until woken (an ack, a new file) or `timeout`. asyncio.timeout, not wait_for: on
        3.11 wait_for can swallow a cancellation that meets a wake-up. Cleared after waking,
        not before: a wake-up since the caller last looked is never lost."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._wakeup.wait()
        self._wakeup.clear()

    async def run(self) -> None:
        while True:
            if not self.link_up():
                await self._wait(1.0)
                continue
            picked = self._next()
            if picked is None:
                await self._wait(self._earliest_resend() or 5.0)
                continue
            item, index = picked
            if item.file_id not in self.meta_sent:
                meta = msgspec.json.encode(item.meta)
                if not await self._send(filelink.META, meta, 1):
                    continue
                self.meta_sent.add(item.file_id)
            await self._send_chunk(item, index)

    async def _send(self, leaf: str, payload: bytes, qos: int) -> bool:
        """Spend the allocation on `payload`, then publish it; False if it did not go."""
        while not self.allocator.try_spend(len(payload)):
            await self._wait(min(self.allocator.wait_s(len(payload)), 1.0))
            if not self.link_up():
                return False
        if not await self.publish(leaf, payload, qos):
            return False
        self.bytes_sent += len(payload)
        return True

    async def _send_chunk(self, item: Outgoing, index: int) -> None:
        try:
            with item.path.open("rb") as source:
                source.seek(index * item.meta.chunk_bytes)
                data = source.read(item.meta.chunk_bytes)
        except OSError as exc:
            self._drop(item, f"cannot be read: {exc.strerror or exc}")
            return
        payload = filelink.encode_chunk(Chunk(item.file_id, index, item.meta.chunks, data))
        key = (item.file_id, index)
        resend = key in self.sent_at  # still there: its time ran out (a gap clears it)
        if await self._send(filelink.CHUNK, payload, 0):
            self.sent_at[key] = self.clock()
            self.chunks_sent += 1
            self.resent += resend
            if resend:
                self.timeouts[key] = self.timeouts.get(key, 0) + 1

    def _drop(self, item: Outgoing, why: str) -> None:
        self.files.pop(item.file_id, None)
        self.queue.delivered(item.file_id)  # nothing more can be sent of it
        self.bus.emit("downlink.failed", Severity.CRITICAL,
                      f"{item.meta.folder}/{item.meta.name} {why}: not sent",
                      file_id=item.file_id)  # fmt: skip

    # -- acknowledgements (the `file.ack` command) -----------------------------------------

    async def ack(self, args: FileAck) -> dict[str, Any]:
        item = self.files.get(args.file_id)
        if item is None:
            if args.file_id <= self.queue_max_id() and args.verified:
                return {"file_id": args.file_id, "state": "delivered"}
            raise CommandRejected(f"no file {args.file_id} is being sent")
        if args.need_meta:
            self.meta_sent.discard(item.file_id)
        newest_acked = 0.0
        changed = False
        for first, last in args.have:
            if last < first or last >= item.meta.chunks:
                raise CommandRejected(f"range [{first}, {last}] is not within the file's "
                                      f"{item.meta.chunks} segments")  # fmt: skip
            for index in range(first, last + 1):
                self.timeouts.pop((item.file_id, index), None)
                sent = self.sent_at.pop((item.file_id, index), None)
                newest_acked = max(newest_acked, sent or 0.0)
                changed |= item.mark(index)
        # MQTT keeps order: a segment sent before one that arrived, and not here, was lost.
        for key, sent in list(self.sent_at.items()):
            if key[0] == item.file_id and sent < newest_acked:
                del self.sent_at[key]
        if changed:
            self.queue.save_acks(item)
        state = "sending"
        if args.restart:
            item.acked[:] = bytes(len(item.acked))
            self.queue.save_acks(item)
            self.bus.emit("downlink.restarted", Severity.WARNING,
                          f"{item.meta.folder}/{item.meta.name}: the ground's copy did not match "
                          "its hash; sending it again", file_id=item.file_id)  # fmt: skip
            state = "restarted"
        elif args.verified and item.complete():
            self.files.pop(item.file_id)
            self.queue.delivered(item.file_id)
            self.bus.emit("downlink.delivered", Severity.INFO,
                          f"{item.meta.folder}/{item.meta.name} delivered and verified on the "
                          "ground", file_id=item.file_id, size=item.meta.size)  # fmt: skip
            state = "delivered"
        self._wakeup.set()
        return {"file_id": item.file_id, "acked": item.acked_count(),
                "of": item.meta.chunks, "state": state}  # fmt: skip

    def queue_max_id(self) -> int:
        row = self.queue.db.execute("SELECT MAX(file_id) FROM files").fetchone()
        return int(row[0] or 0)

    def commands(self) -> list[CommandSpec[Any]]:
        doc = "The ground's acknowledgement of file segments (cupola receive)."
        return [CommandSpec("file.ack", FileAck, self.ack, doc)]

    # -- what the ground sees --------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The queue in sending order, each file's progress, and its ETA at the pace now."""
        rate = self.allocator.rate()
        ahead = 0.0
        queue = []
        for item in sorted(self.files.values(), key=lambda f: (f.priority, f.file_id)):
            left = item.meta.size * (1 - item.acked_count() / max(item.meta.chunks, 1))
            ahead += left
            queue.append({"file_id": item.file_id, "name": f"{item.meta.folder}/{item.meta.name}",
                          "priority": item.priority, "size": item.meta.size,
                          "acked_fraction": round(item.acked_count() / max(item.meta.chunks, 1), 3),
                          "eta_s": round(ahead / rate) if rate > 0 else None})  # fmt: skip
        return {"queue": queue, "delivered": self.queue.delivered_count(),
                "chunks_sent": self.chunks_sent, "resent": self.resent,
                **self.allocator.status()}  # fmt: skip
