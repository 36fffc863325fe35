"""Which clip files were offloaded and verified: the record the format guard reads.

The ASC MHL history is the chain of custody; this is the daemon's quick answer to "is every
clip on this card safe elsewhere?" without hashing the card again: a file counts as offloaded
only while it is still the same file (size and modification time) that was copied, hashed,
re-read and found identical.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from firmware_host.storage import open_database

MIGRATIONS = [
    """
    CREATE TABLE offloaded (
        camera TEXT NOT NULL,
        name TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        xxh64 TEXT NOT NULL,
        copy TEXT NOT NULL,
        verified_at REAL NOT NULL,
        PRIMARY KEY (camera, name)
    );
    """,
]


@dataclass(frozen=True)
class Offloaded:
    camera: str
    name: str
    size: int
    mtime_ns: int
    xxh64: str
    copy: str  # the verified copy, relative to the store
    verified_at: float


class OffloadIndex:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = open_database(path, MIGRATIONS)
        self.db.row_factory = sqlite3.Row

    def close(self) -> None:
        self.db.close()

    def record(self, entry: Offloaded) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT OR REPLACE INTO offloaded VALUES (?, ?, ?, ?, ?, ?, ?)",
                (entry.camera, entry.name, entry.size, entry.mtime_ns, entry.xxh64, entry.copy,
                 entry.verified_at),
            )  # fmt: skip

    def get(self, camera: str, name: str) -> Offloaded | None:
        row = self.db.execute(
            "SELECT * FROM offloaded WHERE camera = ? AND name = ?", (camera, name)
        ).fetchone()
        return Offloaded(**dict(row)) if row else None

    def is_current(self, camera: str, file: Path) -> bool:
        """`file` (on the card) was offloaded and verified, and has not changed since."""
        entry = self.get(camera, file.name)
        if entry is None:
            return False
        stat = file.stat()
        return entry.size == stat.st_size and entry.mtime_ns == stat.st_mtime_ns

    def all(self, camera: str | None = None) -> list[Offloaded]:
        sql = "SELECT * FROM offloaded" + (" WHERE camera = ?" if camera else "") + " ORDER BY 1, 2"
        return [Offloaded(**dict(r)) for r in self.db.execute(sql, (camera,) if camera else ())]
