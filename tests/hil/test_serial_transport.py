"""The serial transport's own system calls, on a real pseudo-terminal: a write bigger than
the line holds waits and arrives whole and in order; a port whose other end goes away, or
whose read fails, is reported lost, as pyserial would report it; a port closed under the
transport is never written through its old descriptor number."""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import serial

from firmware_host.link.port import open_serial


class Sink(asyncio.Protocol):
    """Records every connection_lost (the transport reports a loss once)."""

    def __init__(self) -> None:
        self.losses: list[Exception | None] = []
        self.lost = asyncio.Event()

    def connection_lost(self, exc: Exception | None) -> None:
        self.losses.append(exc)
        self.lost.set()

    async def settled(self) -> list[Exception | None]:
        async with asyncio.timeout(10):
            await self.lost.wait()
        for _ in range(5):  # room for a second report, were one scheduled
            await asyncio.sleep(0)
        return self.losses


@dataclass
class Pty:
    master: int
    slave: int
    transport: Any  # firmware_host.link.port._SerialTransport
    sink: Sink
    closed: set[int] = field(default_factory=set)

    def close(self, fd: int) -> None:
        os.close(fd)
        self.closed.add(fd)

    @property
    def port(self) -> serial.Serial:
        port: serial.Serial = self.transport.get_extra_info("serial")
        return port


@asynccontextmanager
async def pty_port(baud: int = 115200) -> AsyncIterator[Pty]:
    """The transport on a fresh pty's slave; everything closed afterwards."""
    loop = asyncio.get_running_loop()
    master, slave = os.openpty()
    sink = Sink()
    pty = Pty(master, slave, await open_serial(sink, os.ttyname(slave), baudrate=baud), sink)
    try:
        yield pty
    finally:
        loop.remove_reader(master)
        pty.transport.close()  # a no-op once the transport has lost the port
        for fd in {master, slave} - pty.closed:
            os.close(fd)
        await sink.settled()  # the transport's own winding down ends inside the test


async def test_a_write_bigger_than_the_line_holds_waits_and_arrives_whole_in_order() -> None:
    loop = asyncio.get_running_loop()
    async with pty_port() as pty:
        payload = bytes(range(256)) * 4096  # 1 MiB: far more than a pty holds
        pty.transport.write(payload)
        assert pty.transport.get_write_buffer_size() > 0  # the rest waits for the line
        got = bytearray()
        arrived = asyncio.Event()

        def on_readable() -> None:
            got.extend(os.read(pty.master, 65536))
            if len(got) >= len(payload):
                arrived.set()

        os.set_blocking(pty.master, False)
        loop.add_reader(pty.master, on_readable)
        async with asyncio.timeout(10):
            await arrived.wait()
        assert bytes(got) == payload
        assert pty.transport.get_write_buffer_size() == 0


async def test_a_port_whose_other_end_goes_away_is_lost_with_a_serial_error() -> None:
    async with pty_port(9600) as pty:
        pty.close(pty.slave)  # the transport's own fd is the only one left on its side
        pty.close(pty.master)  # the cable pulled
        losses = await pty.sink.settled()
        assert len(losses) == 1
        assert isinstance(losses[0], serial.SerialException)
        assert pty.transport.is_closing()


async def test_a_read_the_kernel_fails_is_a_loss_with_its_errno(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """EIO from the port's read (an adapter unplugged mid-read), injected at the system call:
    the read's OSError ends the port; it is not taken for "nothing yet"."""
    async with pty_port() as pty:
        port_fd = pty.port.fileno()
        real_read: Callable[[int, int], bytes] = os.read

        def read(fd: int, size: int) -> bytes:
            if fd == port_fd:
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            return real_read(fd, size)

        monkeypatch.setattr(os, "read", read)
        os.write(pty.master, b"\x00")  # makes the port readable
        losses = await pty.sink.settled()
        assert len(losses) == 1
        assert isinstance(losses[0], serial.SerialException)
        assert isinstance(losses[0].__cause__, OSError)
        assert losses[0].__cause__.errno == errno.EIO


async def test_a_port_closed_under_the_transport_is_not_written_through_its_old_fd() -> None:
    """Once pyserial has closed the port, its descriptor number can belong to another file
    (here it is made to): a write must end the transport, not land in that file."""
    async with pty_port() as pty:
        reader, writer = os.pipe()  # made first: neither can take the port's number
        old_fd = pty.port.fileno()
        pty.port.close()
        os.dup2(writer, old_fd)  # the old number now names the pipe's writing end
        try:
            pty.transport.write(b"meant for the port")
            losses = await pty.sink.settled()
            os.set_blocking(reader, False)
            with pytest.raises(BlockingIOError):
                os.read(reader, 100)  # nothing reached the pipe
            assert len(losses) == 1
            assert isinstance(losses[0], serial.PortNotOpenError)
        finally:
            for fd in (reader, writer, old_fd):
                os.close(fd)
