"""Budget state that must outlive the process, in SQLite next to the shot log.

A cap the ground cut, a planned station power-down, the media used at the start of the day
and the downlink already spent today are facts about the shoot, not about this process: a
daemon restarted by systemd in the middle of a 120 W power-down must not come back at 300 W,
nor give the day's downlink allocation out a second time.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

SCHEMA = "CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, value TEXT NOT NULL)"


class BudgetLedger:
    """A small durable key-value store: every `put` is committed before it returns."""

    def __init__(self, path: Path | str) -> None:
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(SCHEMA)

    def get(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM entries WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, value: Any) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO entries (key, value) VALUES (?, ?)", (key, json.dumps(value))
        )

    def close(self) -> None:
        self._db.close()
