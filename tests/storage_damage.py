"""Real damage to real SQLite files: garbage written over a page inside the file.

Header damage and truncation are the easy cases; these helpers break a b-tree page in the
middle of a database, which SQLite only notices when something reads that page.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
from pathlib import Path

from firmware_host.storage import side_file


def page_size_and_count(path: Path) -> tuple[int, int]:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        size = int(connection.execute("PRAGMA page_size").fetchone()[0])
        count = int(connection.execute("PRAGMA page_count").fetchone()[0])
    return size, count


def root_page(path: Path, table: str) -> int:
    return int(scalar(path, f"SELECT rootpage FROM sqlite_master WHERE name = '{table}'"))


def scalar(path: Path, sql: str) -> object:
    """One value read from a database, the connection closed again."""
    with contextlib.closing(sqlite3.connect(path)) as connection:
        return connection.execute(sql).fetchone()[0]


def damage_page(path: Path, page: int | None = None, seed: int = 16) -> int:
    """Overwrite one page (default: the middle one, never page 1, the header) with garbage.

    Every connection to the file must be closed first (its WAL is then checkpointed into
    the file). Returns the page number damaged.
    """
    assert not side_file(path, "-wal").exists(), "close every connection first"
    size, count = page_size_and_count(path)
    target = page if page is not None else max(2, count // 2)
    assert 1 < target <= count, f"{path.name} has {count} pages"
    garbage = random.Random(seed).randbytes(size)
    with path.open("r+b") as file:
        file.seek((target - 1) * size)
        file.write(garbage)
    return target
