"""A serial port as a byte stream, for protocols that frame their own bytes (9-pin, widget).

Opened exactly like the native link's port (exclusive, stale input dropped), with the line
settings the protocol needs (Sony 9-pin is 8O1); every chunk goes through the link tap so
`cupola decode --tap` sees foreign protocols too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import termios
from collections.abc import Callable
from typing import Any

import serial

from firmware_host.link.errors import LinkDown
from firmware_host.link.port import open_serial
from firmware_host.link.transport import Tap
from protocols.tap import Direction


def _is_pty(path: str) -> bool:
    return os.path.realpath(path).startswith("/dev/pts/")


class _Receiver(asyncio.Protocol):
    def __init__(self, on_data: Callable[[bytes], None], tap: Tap | None) -> None:
        self.on_data = on_data
        self.tap = tap
        self.lost = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        tap = self.tap
        if tap is not None and tap.listeners:
            tap(Direction.FROM_DEVICE, data)
        self.on_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)


class BytePort:
    def __init__(self, path: str, transport: asyncio.Transport, receiver: _Receiver) -> None:
        self.path = path
        self._transport = transport
        self._receiver = receiver

    @classmethod
    async def open(
        cls,
        path: str,
        baud: int,
        on_data: Callable[[bytes], None],
        *,
        parity: str = serial.PARITY_NONE,
        tap: Tap | None = None,
    ) -> BytePort:
        receiver = _Receiver(on_data, tap)
        if _is_pty(path):
            # A pseudo-terminal has no parity bit to set (this kernel refuses PARENB on one
            # after the first change): the simulator on its other end models the line.
            parity = serial.PARITY_NONE
        try:
            transport = await open_serial(
                receiver, path, baudrate=baud, parity=parity, exclusive=True
            )
        except (serial.SerialException, OSError, ValueError, termios.error) as exc:
            raise LinkDown(f"cannot open {path}: {exc}") from exc
        serial_obj: Any = transport.serial
        with contextlib.suppress(serial.SerialException, OSError):
            serial_obj.reset_input_buffer()
        return cls(path, transport, receiver)

    @property
    def closed(self) -> bool:
        return self._receiver.lost.done() or self._transport.is_closing()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._receiver.lost)

    def write(self, data: bytes) -> None:
        if self.closed:
            raise LinkDown(f"{self.path} is closed")
        self._transport.write(data)
        tap = self._receiver.tap
        if tap is not None and tap.listeners:
            tap(Direction.TO_DEVICE, data)

    def close(self) -> None:
        self._transport.close()
