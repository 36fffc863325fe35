"""Serial ports opened by pyserial and driven by the event loop without pyserial's per-call
select.

pyserial configures the port (termios, baud, parity, the exclusive lock) and
pyserial-asyncio-fast moves its bytes, calling `read` only once the loop has seen the fd
readable and `write` with the port non-blocking. pyserial's own `read` and `write` select on
the fd again and build two timeout objects per call; on the daemon's hot path (a poll is one
write and one or more reads) that was a fifth of the link layer's CPU. Here they are one
system call each, with pyserial's outcomes kept: data, nothing yet, or SerialException for a
port that is gone (which the transport turns into connection_lost). A write that does not fit
now (BlockingIOError, or part of it) waits in the transport for the port to drain.
"""

from __future__ import annotations

import asyncio
import errno
import os
from typing import TYPE_CHECKING, Any

import serial
import serial_asyncio_fast

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

_RETRY = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR)


class LoopDrivenSerial(serial.Serial):
    """A pyserial port whose reads and writes are single non-blocking system calls."""

    def read(self, size: int = 1) -> bytes:
        fd = self.fd
        if fd is None:
            raise serial.PortNotOpenError()
        try:
            data = os.read(fd, size)
        except OSError as exc:
            if exc.errno in _RETRY:
                return b""
            raise serial.SerialException(f"read failed: {exc}") from exc
        if not data:  # as pyserial: a port that went away reads as empty once readable
            raise serial.SerialException(
                "device reports readiness to read but returned no data "
                "(device disconnected or multiple access on port?)"
            )
        return data

    def write(self, data: ReadableBuffer, /) -> int:
        """Bytes written (possibly fewer than given); BlockingIOError if none fit now, which
        the transport answers by waiting for the fd to become writable."""
        fd = self.fd
        if fd is None:
            raise serial.PortNotOpenError()
        try:
            return os.write(fd, data)
        except (BlockingIOError, InterruptedError):
            raise
        except OSError as exc:
            raise serial.SerialException(f"write failed: {exc}") from exc


class _SerialTransport(serial_asyncio_fast.SerialTransport):
    """pyserial-asyncio-fast's transport, which leaves its writer registered once the buffer
    has drained: the next writable event then finds nothing to write and fails an assertion,
    every loop turn, for good. The writer is removed once there is nothing left to write."""

    def _write_ready(self) -> None:
        super()._write_ready()
        if not self._write_buffer:
            self._remove_writer()


async def open_serial(
    protocol: asyncio.Protocol, path: str, **settings: Any
) -> serial_asyncio_fast.SerialTransport:
    """Open `path` (pyserial's settings: baudrate, parity, exclusive...) with `protocol` on it.
    Raises what pyserial raises for a port that cannot be opened."""
    loop = asyncio.get_running_loop()
    port = await loop.run_in_executor(None, lambda: LoopDrivenSerial(path, **settings))
    return _SerialTransport(loop, protocol, port)
