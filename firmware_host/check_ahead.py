"""State files checked on another thread while the daemon is still importing its modules.

Opening a full outbox (69 MB) costs its integrity check (`PRAGMA quick_check`, 23-25 ms here)
and reading it through first (14 ms from memory, 70-85 ms from disk): time every device waits
for before its first byte, since the daemon opens its databases as it is built. Its imports
take about 100 ms after the config is read, holding the GIL, while SQLite checks and the
kernel reads without it: started then, on the other core, the check is over by the time the
outbox opens. A file is checked ahead only when it has no WAL (a clean shutdown leaves
none), and its result is used only if it passed and neither it nor its WAL changed (device,
inode, size, modification and change times) between the start of the check and the open;
else the open reads and checks as it always did. Nothing else writes the file meanwhile: the
daemon holds its state directory (`firmware_host.instance`), and the times are a second
guard (since Linux 6.13 fine-grained once read, so even a write within the same clock tick
shows).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from firmware_host.storage import integrity_problems, read_through, side_file

Identity = tuple[tuple[int, int, int, int, int] | None, ...]


def identity(path: Path) -> Identity:
    """What changes when a database file or its WAL is written, replaced or removed."""
    found: list[tuple[int, int, int, int, int] | None] = []
    for each in (path, side_file(path, "-wal")):
        try:
            info = os.stat(each)
        except OSError:
            found.append(None)
        else:
            found.append(
                (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
            )
    return tuple(found)


class CheckAhead:
    """Checks `paths` on a thread of its own from construction; `passed(path)` waits for it.

    Use it as a context manager around what opens the files: leaving it waits for the thread
    (a check takes well under a second), so none outlives the process's use of the files.
    Only for files no other process writes meanwhile (`firmware_host.instance`).
    """

    def __init__(self, paths: Sequence[Path]) -> None:
        self._passed: dict[Path, Identity] = {}
        self._thread: threading.Thread | None = None
        if not paths:  # an unguarded state directory: nothing to check ahead, no thread
            return
        self._thread = threading.Thread(
            target=self._check_all, args=(tuple(paths),), name="check-ahead"
        )
        try:
            self._thread.start()
        except RuntimeError:  # no thread to be had: every file is checked as it opens
            self._thread = None

    def _check_all(self, paths: tuple[Path, ...]) -> None:
        for path in paths:
            try:
                self._check(path)
            except Exception:  # not passed: the open checks it and says why
                continue

    def _check(self, path: Path) -> None:
        before = identity(path)
        if before[0] is None or before[1] is not None:
            # Nothing to check (the open creates it), or a WAL left by a crash: the check's
            # connection, the last to close, would write it into the file, and the file would
            # not pass as it was. The open checks it, having replayed the WAL itself.
            return
        read_through(path)
        connection = sqlite3.connect(f"{path.absolute().as_uri()}?mode=rw", uri=True)
        try:  # mode=rw: never creates a file
            sound = not integrity_problems(connection)
        finally:
            connection.close()
        if sound:  # as it was before the check: what changed since does not pass
            self._passed[path] = before

    def passed(self, path: Path) -> bool:
        """True if `path` passed its check and is as it was then: its open need not read it
        or check it again. Waits for the checks to end."""
        self._join()
        checked = self._passed.get(path)
        return checked is not None and identity(path) == checked

    def __enter__(self) -> CheckAhead:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._join()

    def _join(self) -> None:
        if self._thread is not None:
            self._thread.join()
