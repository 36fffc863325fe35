"""The link tap: records survive any split of the stream; the server serves on request only,
names unknown devices, and never lets a slow listener hold a link."""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_host.gear import line
from firmware_host.link.tap import LinkTap, TapServer, unix_address
from firmware_host.link.transport import FrameReceiver, SerialPort
from protocols.framing import DeframerStats
from protocols.tap import MAX_CHUNK, Direction, TapFormatError, TapReader, build_records

chunks = st.lists(
    st.tuples(st.sampled_from([Direction.TO_DEVICE, Direction.FROM_DEVICE]),
              st.integers(0, 2**63), st.binary(max_size=3 * MAX_CHUNK)),
    max_size=8,
)  # fmt: skip


@given(chunks, st.lists(st.integers(1, 97), min_size=1, max_size=6))
def test_records_come_back_whatever_the_split(
    sent: list[tuple[Direction, int, bytes]], cuts: list[int]
) -> None:
    stream = b"".join(build_records(d, t, data) for d, t, data in sent)
    reader = TapReader()
    got = []
    position, turn = 0, 0
    while position < len(stream):
        step = cuts[turn % len(cuts)]
        got += reader.feed(stream[position : position + step])
        position, turn = position + step, turn + 1
    by_direction: dict[Direction, bytes] = {}
    for record in got:
        by_direction[record.direction] = by_direction.get(record.direction, b"") + record.data
        assert len(record.data) <= MAX_CHUNK
    for direction in (Direction.TO_DEVICE, Direction.FROM_DEVICE):
        assert by_direction.get(direction, b"") == b"".join(
            data for d, _, data in sent if d == direction
        )


def test_a_stream_that_is_not_a_tap_is_refused() -> None:
    with pytest.raises(TapFormatError, match="not a tap stream"):
        TapReader().feed(b"GET / HTTP/1.1\r\n\r\n")


async def _listen(path: Path, device: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    with unix_address(path) as address:
        reader, writer = await asyncio.open_unix_connection(address)
    writer.write(device.encode() + b"\n")
    await writer.drain()
    return reader, writer


async def test_the_tap_mirrors_both_directions_to_a_listener(tmp_path: Path) -> None:
    tap = LinkTap("cam-a", 115200, clock=lambda: 1700000000.25)
    tap(Direction.TO_DEVICE, b"unheard")  # nobody listening: nothing kept, nothing sent
    server = TapServer(tmp_path / ("deep/" * 12) / "tap.sock", {"cam-a": tap})  # past 107 bytes
    serving = asyncio.create_task(server.run())
    server.path.parent.mkdir(parents=True)
    try:
        await server.ready.wait()
        assert server.path.stat().st_mode & 0o077 == 0  # owner only
        reader, writer = await _listen(server.path, "cam-a")
        assert json.loads(await reader.readline()) == {"device": "cam-a", "baud": 115200}
        tap(Direction.TO_DEVICE, b"\x00request\x00")
        tap(Direction.FROM_DEVICE, b"\x00reply\x00")
        records = TapReader()
        got = []
        while len(got) < 2:
            got += records.feed(await reader.read(4096))
        assert [(r.direction, r.data) for r in got] == [
            (Direction.TO_DEVICE, b"\x00request\x00"),
            (Direction.FROM_DEVICE, b"\x00reply\x00"),
        ]
        assert got[0].wall_ns == 1700000000250000000
        writer.close()
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
    assert not server.path.exists()


async def test_an_unknown_device_is_named_and_the_connection_closed(tmp_path: Path) -> None:
    server = TapServer(tmp_path / "tap.sock", {"cam-a": LinkTap("cam-a", 115200, lambda: 0.0)})
    serving = asyncio.create_task(server.run())
    try:
        await server.ready.wait()
        reader, _writer = await _listen(server.path, "toaster")
        answer = json.loads(await reader.readline())
        assert answer == {"error": "no device 'toaster'; known: cam-a"}
        assert await reader.read() == b""
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)


async def test_a_listener_that_does_not_read_loses_records_never_the_link(tmp_path: Path) -> None:
    tap = LinkTap("key", 115200, lambda: 0.0)
    server = TapServer(tmp_path / "tap.sock", {"key": tap})
    serving = asyncio.create_task(server.run())
    try:
        await server.ready.wait()
        reader, _writer = await _listen(server.path, "key")  # held: dropping it hangs up
        await reader.readline()
        for _ in range(400):  # 400 x 4 KiB, never read: every call returns at once
            tap(Direction.FROM_DEVICE, bytes(MAX_CHUNK))
        assert 0 < tap.dropped < 400
        records = TapReader()
        got: list[tuple[Direction, bytes]] = []
        while len(got) < 400 - tap.dropped:  # the listener catches up on what was queued
            got += [(r.direction, r.data) for r in records.feed(await reader.read(65536))]
        tap(Direction.TO_DEVICE, b"after")  # ... and then hears of the loss first
        while got[-1][1] != b"after":
            got += [(r.direction, r.data) for r in records.feed(await reader.read(65536))]
        assert got[-2] == (Direction.LOST, struct.pack(">I", tap.dropped))
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)


class _CountingTap:
    def __init__(self) -> None:
        self.listeners: dict[object, int] = {}
        self.heard: list[tuple[Direction, bytes]] = []

    def __call__(self, direction: Direction, data: bytes) -> None:
        self.heard.append((direction, data))


class _Transport:
    def is_closing(self) -> bool:
        return False

    def write(self, data: bytes) -> None:
        pass


def _native_read(tap: _CountingTap) -> Callable[[bytes], None]:
    return FrameReceiver(DeframerStats(), lambda _: None, lambda _: None, tap).data_received


def _native_write(tap: _CountingTap) -> Callable[[bytes], None]:
    receiver = FrameReceiver(DeframerStats(), lambda _: None, lambda _: None, tap)
    return SerialPort("/dev/pts/x", cast(asyncio.Transport, _Transport()), receiver, tap).write


def _gear_read(tap: _CountingTap) -> Callable[[bytes], None]:
    return line._Receiver(lambda _: None, tap).data_received


def _gear_write(tap: _CountingTap) -> Callable[[bytes], None]:
    receiver = line._Receiver(lambda _: None, tap)
    return line.BytePort("/dev/pts/x", cast(asyncio.Transport, _Transport()), receiver).write


@pytest.mark.parametrize(
    ("port_side", "direction"),
    [
        (_native_read, Direction.FROM_DEVICE),
        (_native_write, Direction.TO_DEVICE),
        (_gear_read, Direction.FROM_DEVICE),
        (_gear_write, Direction.TO_DEVICE),
    ],
)
async def test_a_port_calls_its_tap_only_while_someone_listens(
    port_side: Callable[[_CountingTap], Callable[[bytes], None]], direction: Direction
) -> None:
    """Five reads and writes a poll: an unwatched link must not pay a call for each."""
    tap = _CountingTap()
    move = port_side(tap)
    move(b"\x00unheard")
    assert tap.heard == []
    tap.listeners[object()] = 0
    move(b"\x00heard")
    assert tap.heard == [(direction, b"\x00heard")]
