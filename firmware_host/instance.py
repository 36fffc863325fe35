"""One daemon per state directory.

A second `cupola daemon` started by hand on the same state directory would write the same
outbox and shot log, fight the first for the broker's client id and find its ports taken:
it refuses to start instead, naming the one that runs. The lock is the kernel's (`flock`),
released however the holder ends, a kill included, so a crash never leaves a stale lock.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

LOCK_FILE = "daemon.lock"


class StateDirInUse(Exception):
    """Another process holds the state directory."""


def claim_state_dir(state_dir: Path) -> int | None:
    """Hold the state directory for as long as this process lives; returns the lock's file
    descriptor, to be left open. None when no lock file can be made or locked (a full or
    read-only disk: the daemon still starts there, as it always has, only unguarded).
    Raises StateDirInUse when another process holds it."""
    path = state_dir / LOCK_FILE
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = _holder(fd)
        os.close(fd)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        raise StateDirInUse(
            f"another cupola daemon{holder} is running on the state directory {state_dir}"
        ) from None
    try:  # who holds it, for the message a second one prints; a full disk keeps it empty
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError:
        pass
    return fd


def _holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""
