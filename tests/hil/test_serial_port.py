"""The serial port as the daemon opens it (firmware_host/link/port.py), on a real
pseudo-terminal: bytes that do not fit in the line's buffer wait and all arrive, in order;
once they have, the port goes quiet (no writer left registered to fail every loop turn); a
port whose other end vanishes is reported lost."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from firmware_host.link.port import open_serial


class Collector(asyncio.Protocol):
    def __init__(self) -> None:
        self.lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set_result(exc)


async def test_a_write_larger_than_the_line_buffer_arrives_whole_and_the_port_goes_quiet() -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: errors.append(context))
    master, slave = os.openpty()
    path = os.ttyname(slave)
    transport = await open_serial(Collector(), path, baudrate=115200, exclusive=True)
    sent = bytes(range(256)) * 1024  # 256 KiB: far more than a pty holds
    for start in range(0, len(sent), 4096):
        transport.write(sent[start : start + 4096])
    received = bytearray()
    whole = asyncio.Event()

    def read() -> None:
        received.extend(os.read(master, 65536))
        if len(received) >= len(sent):
            whole.set()

    loop.add_reader(master, read)
    try:
        await asyncio.wait_for(whole.wait(), 30)
        for _ in range(20):  # loop turns in which the drained port is writable
            await asyncio.sleep(0)
        assert bytes(received) == sent
        assert transport.get_write_buffer_size() == 0
        assert errors == []
    finally:
        loop.remove_reader(master)
        transport.close()
        os.close(master)
        os.close(slave)


async def test_a_vanished_other_end_is_reported_lost() -> None:
    master, slave = os.openpty()
    path = os.ttyname(slave)
    collector = Collector()
    transport = await open_serial(collector, path, baudrate=115200, exclusive=True)
    os.close(slave)
    os.close(master)
    try:
        assert await asyncio.wait_for(collector.lost, 10) is not None
    finally:
        transport.close()
