"""SQLite for everything onboard that must survive a crash.

Each store opens its own file in WAL mode with synchronous=FULL: a transaction that returned
is on disk, whether the daemon is killed or the power fails a moment later. Schemas carry a
version; opening an older file migrates it forward in one transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path


class StorageError(Exception):
    """An onboard database cannot be opened or migrated; the message names the file."""


def open_database(path: Path, migrations: Sequence[str]) -> sqlite3.Connection:
    """Open (creating it if needed) and migrate a database; migrations[i] brings v i to v i+1."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("PRAGMA foreign_keys=ON")
        connection.execute("PRAGMA busy_timeout=5000")
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version > len(migrations):
            raise StorageError(
                f"{path} has schema version {version}, newer than this daemon ({len(migrations)})"
            )
        for number in range(version, len(migrations)):
            # executescript commits anything pending first, so the transaction is in the script.
            script = migrations[number]
            connection.executescript(
                f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version={number + 1};\nCOMMIT;"
            )
    except sqlite3.Error as exc:
        raise StorageError(f"{path}: {exc}") from exc
    return connection
