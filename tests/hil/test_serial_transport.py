"""The serial transport's own system calls, on a real pseudo-terminal: a write bigger than
the line holds waits and arrives whole and in order; a port whose other end goes away is
reported lost, once, as pyserial would report it."""

from __future__ import annotations

import asyncio
import os

import serial

from firmware_host.link.port import open_serial


class Sink(asyncio.Protocol):
    def __init__(self) -> None:
        self.lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set_result(exc)


async def test_a_write_bigger_than_the_line_holds_waits_and_arrives_whole_in_order() -> None:
    loop = asyncio.get_running_loop()
    master, slave = os.openpty()
    sink = Sink()
    transport = await open_serial(sink, os.ttyname(slave), baudrate=115200)
    try:
        payload = bytes(range(256)) * 4096  # 1 MiB: far more than a pty holds
        transport.write(payload)
        assert transport.get_write_buffer_size() > 0  # the rest waits for the line to drain
        got = bytearray()
        arrived = asyncio.Event()

        def on_readable() -> None:
            got.extend(os.read(master, 65536))
            if len(got) >= len(payload):
                arrived.set()

        os.set_blocking(master, False)
        loop.add_reader(master, on_readable)
        async with asyncio.timeout(10):
            await arrived.wait()
        loop.remove_reader(master)
        assert bytes(got) == payload
        assert transport.get_write_buffer_size() == 0
    finally:
        transport.close()
        os.close(master)
        os.close(slave)


async def test_a_port_whose_other_end_goes_away_is_lost_with_a_serial_error() -> None:
    master, slave = os.openpty()
    sink = Sink()
    transport = await open_serial(sink, os.ttyname(slave), baudrate=9600)
    os.close(slave)  # the transport's own fd is the only one left on the port's side
    os.close(master)  # the cable pulled
    async with asyncio.timeout(10):
        lost = await sink.lost
    assert isinstance(lost, serial.SerialException)
    assert transport.is_closing()
