"""A simulated device's end of a serial cable: a pseudo-terminal behind a stable path.

The daemon opens `path`, a symlink to the current /dev/pts/N, exactly as it would open a
/dev/serial/by-id/... link to real hardware. Unplugging closes the pty and removes the link,
so the daemon's port really fails and the path really disappears; plugging back in makes a
new pty and points the link at it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import termios
import tty
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

_READ_SIZE = 4096


class PtyPort:
    """Non-blocking master side of a pty with a stable symlink for the daemon to open."""

    def __init__(self, path: Path, on_data: Callable[[bytes], None]) -> None:
        self.path = path
        self._on_data = on_data
        self._master: int | None = None
        self._slave_keepalive: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.overruns = 0  # bytes dropped because the host was not reading (UART overrun)

    @property
    def connected(self) -> bool:
        return self._master is not None

    @property
    def device_path(self) -> str | None:
        """The /dev/pts/N currently behind `path`."""
        return os.readlink(self.path) if self.path.is_symlink() else None

    def open(self) -> None:
        """Create the pty and publish the symlink (plug the cable in)."""
        if self._master is not None:
            return
        self._loop = asyncio.get_running_loop()
        master, slave = os.openpty()
        tty.setraw(slave, termios.TCSANOW)
        attrs = termios.tcgetattr(slave)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        os.set_blocking(master, False)
        self._master = master
        # Holding the slave open keeps the master readable while the daemon has the port closed.
        self._slave_keepalive = slave
        tmp = self.path.with_name(self.path.name + ".new")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(os.ttyname(slave))
        tmp.replace(self.path)
        self._loop.add_reader(master, self._readable)

    def close(self) -> None:
        """Remove the symlink and destroy the pty (unplug the cable)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        if self._master is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._master)
            os.close(self._master)
            self._master = None
        if self._slave_keepalive is not None:
            os.close(self._slave_keepalive)
            self._slave_keepalive = None

    def write(self, data: bytes) -> None:
        """Write what the device transmits; bytes the pty cannot take are lost, as on a UART."""
        if self._master is None or not data:
            return
        try:
            written = os.write(self._master, data)
        except BlockingIOError:
            written = 0
        except OSError as exc:
            if exc.errno in (errno.EIO, errno.EBADF):
                return
            raise
        self.overruns += len(data) - written

    def discard_input(self) -> None:
        """Drop whatever the host has written and the device has not read."""
        if self._master is not None:
            termios.tcflush(self._master, termios.TCIFLUSH)

    def _readable(self) -> None:
        assert self._master is not None
        try:
            data = os.read(self._master, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.EIO:
                return
            raise
        if data:
            self._on_data(data)
