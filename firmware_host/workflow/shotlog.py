"""The shot log: every take and every clip, in SQLite, surviving `kill -9` at any moment.

A take is written when a camera confirms it rolled (status rolling, one clip row per camera,
in one transaction), never merely armed, and closed when it is cut. After a crash or a device
reset the cameras' own clip lists are the truth: `reconcile` closes clips the log still
believes rolling and adds clips it never heard of, under their take (found by slate and start
frame, or written then if the daemon died before logging it), and never duplicates a row,
because a clip is identified by (camera, clip_id, timecode_in) and a take by its slate
(scene, take, roll) and start frame.

While the state disk refuses writes (`StorageGuard`), starting a take or annotating one
raises StorageFault naming the file (the command says so); closing a clip and reconciling
are left to the next adoption, when the camera's clip list brings the log up to date, so a
camera agent never stops over the disk.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware_host.clock import SYSTEM, Clock
from firmware_host.events import EventBus
from firmware_host.storage import open_or_recover
from firmware_host.storage_guard import StorageFault, StorageGuard

MIGRATIONS = [
    """
    CREATE TABLE takes (
        take_id INTEGER PRIMARY KEY AUTOINCREMENT,
        scene TEXT NOT NULL,
        take INTEGER NOT NULL,
        roll TEXT NOT NULL,
        start_frame INTEGER NOT NULL,
        frame_rate REAL NOT NULL,
        started_at REAL NOT NULL,
        ended_at REAL,
        status TEXT NOT NULL CHECK (status IN ('rolling', 'cut', 'recovered')),
        circled INTEGER NOT NULL DEFAULT 0,
        notes TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE clips (
        camera TEXT NOT NULL,
        clip_id INTEGER NOT NULL,
        timecode_in INTEGER NOT NULL,
        take_id INTEGER REFERENCES takes(take_id),
        scene TEXT NOT NULL,
        take INTEGER NOT NULL,
        roll TEXT NOT NULL,
        timecode_out INTEGER,
        frame_rate REAL NOT NULL,
        frames INTEGER,
        bytes INTEGER,
        duration_s REAL,
        settings TEXT NOT NULL DEFAULT '{}',
        state TEXT NOT NULL CHECK (state IN ('rolling', 'closed', 'recovered')),
        logged_at REAL NOT NULL,
        PRIMARY KEY (camera, clip_id, timecode_in)
    );
    CREATE INDEX clips_by_take ON clips(take_id);
    CREATE INDEX takes_by_scene ON takes(scene, take);
    """,
]


@dataclass(frozen=True)
class ClipFacts:
    """What a camera says about one of its clips."""

    camera: str
    clip_id: int
    timecode_in: int
    timecode_out: int
    frames: int
    bytes: int
    scene: str
    take: int
    roll: str
    closed: bool


class ShotLog:
    def __init__(
        self, path: Path, guard: StorageGuard | None = None, *, clock: Clock = SYSTEM
    ) -> None:
        self.path = path
        self.clock = clock
        self.db, self.recovery = open_or_recover(path, MIGRATIONS)
        self.db.row_factory = sqlite3.Row
        self.guard = guard if guard is not None else StorageGuard(EventBus())

    def close(self) -> None:
        self.db.close()

    # -- takes -----------------------------------------------------------------------------

    def take_started(
        self,
        *,
        scene: str,
        take: int,
        roll: str,
        start_frame: int,
        frame_rate: float,
        clips: dict[str, int],
        settings: dict[str, dict[str, Any]],
        timecodes_in: dict[str, int] | None = None,
    ) -> int:
        """Log a take that rolled (or add cameras to it); `timecodes_in` names cameras that
        started on another frame than `start_frame`. Returns its take id."""
        timecodes_in = timecodes_in or {}
        now = self.clock.wall()
        with self.guard.using(self.path, self.db), self.db:
            self.db.execute("BEGIN IMMEDIATE")
            take_id = self._find_take(scene, take, roll, start_frame)
            if take_id is None:
                take_id = self._insert_take(
                    scene, take, roll, start_frame, frame_rate=frame_rate, now=now
                )
            self.db.executemany(
                "INSERT OR IGNORE INTO clips (camera, clip_id, timecode_in, take_id, scene, take,"
                " roll, frame_rate, settings, state, logged_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'rolling', ?)",
                [
                    (
                        camera,
                        clip_id,
                        timecodes_in.get(camera, start_frame),
                        take_id,
                        scene,
                        take,
                        roll,
                        frame_rate,
                        json.dumps(settings.get(camera, {})),
                        now,
                    )
                    for camera, clip_id in clips.items()
                ],
            )
            self.db.execute(  # reopened if reconciliation had closed it before we logged it
                "UPDATE takes SET status = 'rolling', ended_at = NULL WHERE take_id = ?"
                " AND status != 'rolling' AND EXISTS (SELECT 1 FROM clips c"
                " WHERE c.take_id = takes.take_id AND c.state = 'rolling')",
                (take_id,),
            )
        return take_id

    def clip_closed(
        self, camera: str, clip_id: int, timecode_out: int, frames: int, size: int
    ) -> None:
        with contextlib.suppress(StorageFault), self.guard.using(self.path, self.db), self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "UPDATE clips SET state = 'closed', timecode_out = ?, frames = ?, bytes = ?,"
                " duration_s = ? / frame_rate"
                " WHERE camera = ? AND clip_id = ? AND state = 'rolling'",
                (timecode_out, frames, size, frames, camera, clip_id),
            )
            self._close_finished_takes()

    def _close_finished_takes(self) -> None:
        self.db.execute(
            "UPDATE takes SET status = CASE WHEN EXISTS (SELECT 1 FROM clips c WHERE"
            " c.take_id = takes.take_id AND c.state = 'recovered') THEN 'recovered' ELSE 'cut' END,"
            " ended_at = ? WHERE status = 'rolling' AND NOT EXISTS (SELECT 1 FROM clips c"
            " WHERE c.take_id = takes.take_id AND c.state = 'rolling')",
            (self.clock.wall(),),
        )

    def rolling_take(self) -> dict[str, Any] | None:
        """The take still open in the log (after a restart, the one to resume or reconcile)."""
        row = self.db.execute(
            "SELECT * FROM takes WHERE status = 'rolling' ORDER BY take_id DESC LIMIT 1"
        ).fetchone()
        return dict(row) if row else None

    def settled_clip_ids(self, camera: str) -> set[int]:
        """Clips of a camera the log already holds as finished: no need to ask about them
        (none if the log cannot be read: then every clip is asked about)."""
        try:
            with self.guard.using(self.path):
                rows = self.db.execute(
                    "SELECT clip_id FROM clips WHERE camera = ? AND state != 'rolling'", (camera,)
                ).fetchall()
        except StorageFault:
            return set()
        return {r["clip_id"] for r in rows}

    # -- reconciliation --------------------------------------------------------------------

    def reconcile(self, camera: str, facts: list[ClipFacts], frame_rate: float) -> dict[str, int]:
        """Bring the log in line with a camera's clip list; returns what changed (nothing
        while the disk refuses writes: the next adoption tries again)."""
        try:
            return self._reconcile(camera, facts, frame_rate)
        except StorageFault:
            return {"added": 0, "closed": 0}

    def _reconcile(self, camera: str, facts: list[ClipFacts], frame_rate: float) -> dict[str, int]:
        added = closed = 0
        now = self.clock.wall()
        with self.guard.using(self.path, self.db), self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for fact in facts:
                row = self.db.execute(
                    "SELECT state FROM clips WHERE camera = ? AND clip_id = ? AND timecode_in = ?",
                    (camera, fact.clip_id, fact.timecode_in),
                ).fetchone()
                if row is None:
                    take_id = self._take_for(fact, frame_rate, now)
                    self.db.execute(
                        "INSERT INTO clips (camera, clip_id, timecode_in, take_id, scene, take,"
                        " roll, timecode_out, frame_rate, frames, bytes, duration_s, state,"
                        " logged_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (camera, fact.clip_id, fact.timecode_in, take_id, fact.scene, fact.take,
                         fact.roll, fact.timecode_out if fact.closed else None, frame_rate,
                         fact.frames if fact.closed else None,
                         fact.bytes if fact.closed else None,
                         fact.frames / frame_rate if fact.closed else None,
                         "recovered" if fact.closed else "rolling", now),
                    )  # fmt: skip
                    added += 1
                elif row["state"] == "rolling" and fact.closed:
                    self.db.execute(
                        "UPDATE clips SET state = 'recovered', timecode_out = ?, frames = ?,"
                        " bytes = ?, duration_s = ? WHERE camera = ? AND clip_id = ?"
                        " AND timecode_in = ?",
                        (fact.timecode_out, fact.frames, fact.bytes, fact.frames / frame_rate,
                         camera, fact.clip_id, fact.timecode_in),
                    )  # fmt: skip
                    closed += 1
            known = {(f.clip_id, f.timecode_in) for f in facts}
            # A clip the log thinks is rolling but the camera does not have was never recorded
            # (the camera was reset while armed, or its media formatted): close it as recovered.
            for row in self.db.execute(
                "SELECT clip_id, timecode_in FROM clips WHERE camera = ? AND state = 'rolling'",
                (camera,),
            ).fetchall():
                if (row["clip_id"], row["timecode_in"]) not in known:
                    self.db.execute(
                        "UPDATE clips SET state = 'recovered', frames = 0, bytes = 0,"
                        " duration_s = 0 WHERE camera = ? AND clip_id = ? AND timecode_in = ?",
                        (camera, row["clip_id"], row["timecode_in"]),
                    )
                    closed += 1
            self._close_finished_takes()
        return {"added": added, "closed": closed}

    def _take_for(self, fact: ClipFacts, frame_rate: float, now: float) -> int:
        """The take a clip belongs to; one the log never heard of (the daemon died between
        arming it and logging it) is written now rather than leaving the clip orphaned."""
        found = self._find_take(fact.scene, fact.take, fact.roll, fact.timecode_in)
        if found is not None:
            return found
        return self._insert_take(
            fact.scene, fact.take, fact.roll, fact.timecode_in, frame_rate=frame_rate, now=now
        )

    def _find_take(self, scene: str, take: int, roll: str, start_frame: int) -> int | None:
        row = self.db.execute(
            "SELECT take_id FROM takes WHERE scene = ? AND take = ? AND roll = ?"
            " AND start_frame = ? ORDER BY take_id DESC LIMIT 1",
            (scene, take, roll, start_frame),
        ).fetchone()
        return int(row["take_id"]) if row else None

    def _insert_take(
        self, scene: str, take: int, roll: str, start_frame: int, *, frame_rate: float, now: float
    ) -> int:
        cursor = self.db.execute(
            "INSERT INTO takes (scene, take, roll, start_frame, frame_rate, started_at, status)"
            " VALUES (?, ?, ?, ?, ?, ?, 'rolling')",
            (scene, take, roll, start_frame, frame_rate, now),
        )
        return int(cursor.lastrowid or 0)

    # -- annotations and queries -----------------------------------------------------------

    def annotate(self, take_id: int, *, circled: bool | None, note: str | None) -> bool:
        with self.guard.using(self.path, self.db), self.db:
            self.db.execute("BEGIN IMMEDIATE")
            if circled is not None:
                self.db.execute(
                    "UPDATE takes SET circled = ? WHERE take_id = ?", (int(circled), take_id)
                )
            if note is not None:
                self.db.execute(
                    "UPDATE takes SET notes = CASE WHEN notes = '' THEN ?"
                    " ELSE notes || char(10) || ? END WHERE take_id = ?",
                    (note, note, take_id),
                )
            return bool(self.db.execute("SELECT changes()").fetchone()[0])

    def take_id_of(self, scene: str, take: int) -> int | None:
        row = self.db.execute(
            "SELECT take_id FROM takes WHERE scene = ? AND take = ? ORDER BY take_id DESC LIMIT 1",
            (scene, take),
        ).fetchone()
        return int(row["take_id"]) if row else None

    def query(
        self,
        *,
        scene: str | None = None,
        take: int | None = None,
        camera: str | None = None,
        circled: bool | None = None,
        since: float | None = None,
        limit: int = 200,
        take_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Takes with their clips, newest first."""
        where, params = ["1 = 1"], []
        for clause, value in (
            ("t.take_id = ?", take_id),
            ("t.scene = ?", scene),
            ("t.take = ?", take),
            ("t.circled = ?", None if circled is None else int(circled)),
            ("t.started_at >= ?", since),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        if camera is not None:
            where.append(
                "EXISTS (SELECT 1 FROM clips c WHERE c.take_id = t.take_id AND c.camera = ?)"
            )
            params.append(camera)
        takes = self.db.execute(
            f"SELECT * FROM takes t WHERE {' AND '.join(where)} ORDER BY t.take_id DESC LIMIT ?",
            (*params, limit),
        ).fetchall()
        out = []
        for row in takes:
            clips = self.db.execute(
                "SELECT camera, clip_id, timecode_in, timecode_out, frames, bytes, duration_s,"
                " state, settings FROM clips WHERE take_id = ? ORDER BY camera",
                (row["take_id"],),
            ).fetchall()
            entry = dict(row)
            entry["circled"] = bool(entry["circled"])
            entry["clips"] = [{**dict(c), "settings": json.loads(c["settings"])} for c in clips]
            out.append(entry)
        return out

    def clips(self, camera: str | None = None) -> list[dict[str, Any]]:
        sql = (
            "SELECT * FROM clips" + (" WHERE camera = ?" if camera else "") + " ORDER BY logged_at"
        )
        return [dict(r) for r in self.db.execute(sql, (camera,) if camera else ())]
