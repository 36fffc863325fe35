"""Serial ports opened by pyserial and driven by the event loop with one system call per read
or write.

pyserial configures the port (termios, baud, parity, the exclusive lock) and
pyserial-asyncio-fast's transport moves its bytes: it reads once the loop has seen the fd
readable, and writes with the port non-blocking. It did so through pyserial's `read` and
`write`, which select on the fd again and build two timeout objects per call (on the daemon's
hot path, a poll is one write and one or more reads: that was a fifth of the link layer's
CPU), and then through a pyserial subclass whose methods were single system calls (still a
method call and its checks at every read and write). Here the transport makes the system
calls itself, with pyserial's outcomes kept: data, nothing yet, or a SerialException for a
port that is gone (which the transport turns into connection_lost). A write that does not fit
now (or only in part) waits in the transport for the port to drain.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import serial
import serial_asyncio_fast


class _SerialTransport(serial_asyncio_fast.SerialTransport):
    """pyserial-asyncio-fast's transport with its port's reads and writes as system calls.

    It also left its writer registered once the buffer had drained: the next writable event
    then found nothing to write and failed an assertion, every loop turn, for good. The writer
    is removed once there is nothing left to write."""

    def _read_ready(self) -> None:
        fd = self._serial.fd
        if fd is None:  # the port was closed under the transport: no fd to read, or to reuse
            self._close(exc=serial.PortNotOpenError())
            return
        try:
            data = os.read(fd, self._max_read_size)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._close(exc=_serial_error("read failed", exc))
            return
        if not data:  # as pyserial: a port that went away reads as empty once readable
            self._close(
                exc=serial.SerialException(
                    "device reports readiness to read but returned no data "
                    "(device disconnected or multiple access on port?)"
                )
            )
            return
        self._protocol.data_received(data)

    def _write_data(self, data: bytes | bytearray | memoryview) -> None:
        """Write what fits now; the rest waits for the port to become writable."""
        fd = self._serial.fd
        if fd is None:
            self._fatal_error(serial.PortNotOpenError(), "Write to a closed serial port")
            return
        try:
            written = os.write(fd, data)
        except (BlockingIOError, InterruptedError):
            written = 0
        except OSError as exc:
            self._fatal_error(
                _serial_error("write failed", exc), "Fatal write error on serial transport"
            )
            return
        if written == len(data):
            if self._closing:
                self._close()
            return
        self._write_buffer.append(data[written:])
        self._maybe_pause_protocol()
        self._ensure_writer()

    def _write_ready(self) -> None:
        super()._write_ready()
        if not self._write_buffer:
            self._remove_writer()


def _serial_error(what: str, cause: OSError) -> serial.SerialException:
    """pyserial's exception for a failed system call, with the OSError (its errno) as cause."""
    error = serial.SerialException(f"{what}: {cause}")
    error.__cause__ = cause
    return error


async def open_serial(
    protocol: asyncio.Protocol, path: str, **settings: Any
) -> serial_asyncio_fast.SerialTransport:
    """Open `path` (pyserial's settings: baudrate, parity, exclusive...) with `protocol` on it.
    Raises what pyserial raises for a port that cannot be opened."""
    loop = asyncio.get_running_loop()
    port = await loop.run_in_executor(None, lambda: serial.Serial(path, **settings))
    return _SerialTransport(loop, protocol, port)
