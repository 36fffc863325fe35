"""SQLite for everything onboard that must survive a crash.

Each store opens its own file in WAL mode with synchronous=FULL: a transaction that returned
is on disk, whether the daemon is killed or the power fails a moment later. Schemas carry a
version; opening an older file migrates it forward in one transaction.

Every file is checked when it is opened (`PRAGMA quick_check`: every page of every b-tree,
not only the header), so damage inside a file is found at start-up, named, and either
refused or recovered from (`open_or_recover`), never discovered later as a crash-looping task.
Each file and its WAL are read through once before SQLite opens them (`read_through`), so
that the check, which visits pages in b-tree order, does not read a cold file a scattered
page at a time.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CHECK_LINES = 3  # of quick_check's report, in an error message
READ_THROUGH_CHUNK = 1 << 20
SIDE_FILES = ("-wal", "-shm", "-journal")  # SQLite's companions of a database file

# SQLite primary result codes that mean the file or the disk under it, not the statement.
SQLITE_READONLY = 8
SQLITE_IOERR = 10
SQLITE_CORRUPT = 11
SQLITE_FULL = 13
SQLITE_CANTOPEN = 14
SQLITE_NOTADB = 26
DISK_CODES = {SQLITE_READONLY, SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN,
              SQLITE_NOTADB}  # fmt: skip
DAMAGE_CODES = {SQLITE_CORRUPT, SQLITE_NOTADB}  # a file does not heal: checked at start-up
DISK_ERRNOS = {errno.ENOSPC, errno.EIO, errno.EROFS, errno.EDQUOT}


class StorageError(Exception):
    """An onboard database cannot be opened or migrated; the message names the file."""


class StorageCorrupt(StorageError):
    """A database file is damaged (its integrity check failed, or SQLite says it is not one)."""

    def __init__(self, path: Path, detail: str, advice: str = "") -> None:
        self.path = path
        self.detail = detail
        super().__init__(f"{path}: damaged ({detail})" + (f"; {advice}" if advice else ""))


@dataclass(frozen=True)
class Recovery:
    """A damaged database that was moved aside and replaced by a fresh one."""

    path: Path
    moved_to: Path
    detail: str  # what the integrity check found
    kept: tuple[str, ...]  # tables copied over from the damaged file

    def message(self, lost: str) -> str:
        kept = f"; kept {', '.join(self.kept)}" if self.kept else ""
        return (
            f"{self.path.name} was damaged ({self.detail}): moved aside to {self.moved_to.name} "
            f"and started afresh{kept}; lost: {lost}"
        )


def open_database(
    path: Path, migrations: Sequence[str], *, checked: bool = False
) -> sqlite3.Connection:
    """Open (creating it if needed), check and migrate a database; migrations[i] brings v i to
    v i+1. Raises StorageCorrupt if the file is damaged, StorageError if it cannot be used.
    `checked`: the file passed its check just now and is unchanged since (`CheckAhead`)."""
    if not checked:
        # Once, before SQLite has the file (a full disk's second attempt finds it in memory):
        # closing another descriptor of a file drops every POSIX lock this process holds on
        # it, SQLite's exclusive lock (a full disk's open) included.
        read_through(path)
        read_through(side_file(path, "-wal"))  # replayed by the open after a crash
    try:
        return _open(path, migrations, exclusive=False, checked=checked)
    except StorageCorrupt:
        raise
    except StorageError as exc:
        if not is_disk_fault(exc.__cause__):
            raise
    # A full disk has no room for the WAL's shared-memory file: without it (exclusive locking,
    # the index in this process's memory) the file still opens, and writes go through again
    # as soon as there is space. Only this daemon uses its state files.
    connection = _open(path, migrations, exclusive=True, checked=checked)
    log.warning("%s: opened with exclusive locking: the disk has no room for its -shm file", path)
    return connection


def _open(
    path: Path, migrations: Sequence[str], *, exclusive: bool, checked: bool
) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except (sqlite3.Error, OSError) as exc:
        raise StorageError(f"{path}: {exc}") from exc
    try:
        if exclusive:
            connection.execute("PRAGMA locking_mode=EXCLUSIVE")
        _check_and_migrate(connection, path, migrations, checked=checked)
    except StorageError:
        connection.close()
        raise
    except sqlite3.DatabaseError as exc:
        connection.close()
        if isinstance(exc, sqlite3.OperationalError):
            raise StorageError(f"{path}: {exc}") from exc
        raise StorageCorrupt(path, str(exc)) from exc  # "file is not a database", "malformed"
    return connection


def _check_and_migrate(
    connection: sqlite3.Connection, path: Path, migrations: Sequence[str], *, checked: bool
) -> None:
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA foreign_keys=ON")
    connection.execute("PRAGMA busy_timeout=5000")
    problems = [] if checked else integrity_problems(connection)
    if problems:
        raise StorageCorrupt(path, "; ".join(problems))
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


def side_file(path: Path, suffix: str) -> Path:
    """One of SQLite's companions of a database file (`SIDE_FILES`), beside it."""
    return path.with_name(path.name + suffix)


def read_through(path: Path) -> int:
    """Read a regular file once from start to end, so that what reads it next finds it in
    memory; returns the bytes read (0 for anything else, or what cannot be read: the check
    that follows judges it).

    Opening a full outbox (69 MB) whose file was not in the page cache took 0.9-1.1 s here,
    most likely because the integrity check reads pages in b-tree order, scattered over the
    file. Read through in order first, the same open took 50-130 ms; with the file in memory
    the read costs about 4.5 ms (BENCHMARKS.md, twelfth pass). Only up to the size the file
    had when opened, and never from a FIFO or a device, so it cannot hold start-up. Call it
    before any connection of this process has the file: closing this descriptor drops every
    POSIX lock the process holds on it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return 0
    done = 0
    try:
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode):
            buffer = bytearray(READ_THROUGH_CHUNK)
            while done < info.st_size and (count := os.readv(fd, [buffer])):
                done += count
    except OSError:
        pass  # a read error: the check meets it too, and says what it means
    finally:
        os.close(fd)
    return done


def integrity_problems(connection: sqlite3.Connection, table: str | None = None) -> list[str]:
    """What `PRAGMA quick_check` finds wrong (of the whole file, or of one table); [] if sound."""
    pragma = "PRAGMA quick_check" if table is None else f'PRAGMA quick_check("{table}")'
    rows = [str(row[0]) for row in connection.execute(pragma).fetchall()]
    if rows == ["ok"]:
        return []
    more = len(rows) - CHECK_LINES
    return rows[:CHECK_LINES] + ([f"... {more} more"] if more > 0 else [])


def open_or_recover(
    path: Path,
    migrations: Sequence[str],
    *,
    keep: Sequence[str] = (),
    refusal: str = "",
    clock: Callable[[], float] = time.time,
    checked: bool = False,
) -> tuple[sqlite3.Connection, Recovery | None]:
    """Open a database; if it is damaged, move it aside and start a fresh one. `checked`: as
    for `open_database`, of the file as found.

    `keep` names tables that must survive: they are copied over when they pass their own
    check, and if one does not, nothing is moved and StorageCorrupt is raised with `refusal`
    (what the operator should do) in its message.
    """
    try:
        return open_database(path, migrations, checked=checked), None
    except StorageCorrupt as damage:
        kept = _salvage(path, keep, damage.detail, refusal)
        try:
            moved_to = quarantine(path, clock)
        except OSError as exc:
            raise StorageCorrupt(path, damage.detail, f"it cannot be moved aside: {exc}") from exc
        connection = open_database(path, migrations)
        with connection:
            connection.execute("BEGIN IMMEDIATE")
            for table, rows in kept.items():
                if rows:
                    marks = ",".join("?" * len(rows[0]))
                    connection.executemany(f'INSERT INTO "{table}" VALUES ({marks})', rows)
        return connection, Recovery(path, moved_to, damage.detail, tuple(kept))


def _salvage(
    path: Path, tables: Sequence[str], detail: str, refusal: str
) -> dict[str, list[tuple[object, ...]]]:
    """The rows of `tables` read from a damaged file, each table only if it checks sound."""
    if not tables:
        return {}
    try:
        connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StorageCorrupt(path, f"{detail}; {exc}", refusal) from exc
    kept = {}
    try:
        for table in tables:
            problems = integrity_problems(connection, table)
            if problems:
                raise StorageCorrupt(path, f"{table}: {'; '.join(problems)}", refusal)
            kept[table] = connection.execute(f'SELECT * FROM "{table}"').fetchall()
    except sqlite3.DatabaseError as exc:
        raise StorageCorrupt(path, f"{detail}; {exc}", refusal) from exc
    finally:
        connection.close()
    return kept


def quarantine(path: Path, clock: Callable[[], float] = time.time) -> Path:
    """Move a damaged database (and its WAL) aside, keeping it for the ground to examine.

    The side files keep their suffixes after the new name, so the set still opens as one
    database (`sqlite3 outbox.db.corrupt-... .recover`).
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(clock()))
    moved_to = path.with_name(f"{path.name}.corrupt-{stamp}")
    number = 1
    while moved_to.exists():
        number += 1
        moved_to = path.with_name(f"{path.name}.corrupt-{stamp}-{number}")
    for suffix in SIDE_FILES:
        side = side_file(path, suffix)
        if side.exists():
            side.rename(side_file(moved_to, suffix))
    path.rename(moved_to)
    return moved_to


def is_disk_fault(exc: BaseException | None) -> bool:
    """A failure of the file or the disk (full, I/O, read-only, damaged), not of the SQL."""
    if isinstance(exc, sqlite3.Error):
        return _primary_code(exc) in DISK_CODES
    return isinstance(exc, OSError) and exc.errno in DISK_ERRNOS


def is_damage(exc: BaseException) -> bool:
    """The file itself is damaged: no amount of free space brings it back."""
    return isinstance(exc, sqlite3.Error) and _primary_code(exc) in DAMAGE_CODES


def _primary_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF
