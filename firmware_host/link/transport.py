"""Opening a serial port exactly as for hardware, and turning its bytes into frames."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sized
from typing import Any, Protocol

import serial

from firmware_host.link.errors import LinkDown
from firmware_host.link.port import open_serial
from protocols.framing import Deframer, DeframerStats, Frame, RejectedFrame
from protocols.tap import Direction


class Tap(Protocol):
    """Sees every chunk written to or read from a port (firmware_host/link/tap.py), called
    only while it has listeners: a port reads and writes five times per poll, and an
    unwatched link then pays an attribute test, not a call."""

    @property
    def listeners(self) -> Sized: ...

    def __call__(self, direction: Direction, data: bytes) -> None: ...


log = logging.getLogger(__name__)


class FrameReceiver(asyncio.Protocol):
    """asyncio side of a serial port: bytes in, checked frames out, loss reported once."""

    def __init__(
        self,
        stats: DeframerStats,
        on_frame: Callable[[Frame], None],
        on_lost: Callable[[Exception | None], None],
        tap: Tap | None = None,
    ) -> None:
        self.deframer = Deframer()
        self._tap = tap
        self.deframer.stats = stats
        self._on_frame = on_frame
        self._on_lost = on_lost
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        tap = self._tap
        if tap is not None and tap.listeners:
            tap(Direction.FROM_DEVICE, data)
        for item in self.deframer.feed(data):
            if not isinstance(item, RejectedFrame):
                self._on_frame(item)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._on_lost(exc)


class SerialPort:
    """One open port; `write` sends bytes, `closed` completes when the port goes away."""

    def __init__(
        self,
        path: str,
        transport: asyncio.Transport,
        receiver: FrameReceiver,
        tap: Tap | None = None,
    ) -> None:
        self.path = path
        self._transport = transport
        self.receiver = receiver
        self._tap = tap

    @classmethod
    async def open(
        cls,
        path: str,
        baud: int,
        stats: DeframerStats,
        on_frame: Callable[[Frame], None],
        on_lost: Callable[[Exception | None], None],
        *,
        tap: Tap | None = None,
    ) -> SerialPort:
        receiver = FrameReceiver(stats, on_frame, on_lost, tap)
        try:
            transport = await open_serial(receiver, path, baudrate=baud, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise LinkDown(f"cannot open {path}: {exc}") from exc
        serial_obj: Any = transport.serial
        with contextlib.suppress(serial.SerialException, OSError):
            serial_obj.reset_input_buffer()  # stale bytes from before we opened
        return cls(path, transport, receiver, tap)

    def write(self, data: bytes) -> None:
        if self._transport.is_closing():
            raise LinkDown(f"{self.path} is closed")
        self._transport.write(data)
        tap = self._tap
        if tap is not None and tap.listeners:
            tap(Direction.TO_DEVICE, data)

    def close(self) -> None:
        self._transport.close()
