"""Mirrors device links to tap listeners on request, without ever slowing a link down.

Each link's `LinkTap` is called with every chunk the daemon writes to or reads from the
port while it has listeners; with nobody listening the port only tests `listeners`.
`TapServer` serves the tap socket (protocols/tap.py): owner-only permissions, a bounded
request line, and a listener that falls behind loses records (counted, and announced to it)
rather than holding the link.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

from protocols.tap import MAX_REQUEST, Direction, build_records

log = logging.getLogger(__name__)

MAX_BUFFERED = 256 * 1024  # bytes queued for one listener before records are dropped
REQUEST_TIMEOUT_S = 5.0


@contextlib.contextmanager
def unix_address(path: Path) -> Iterator[str]:
    """An address for `path` that binds and connects whatever its length: through the
    folder's descriptor (a socket path is limited to 107 bytes; state folders may be deeper)."""
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{folder}/{path.name}"
    finally:
        os.close(folder)


class LinkTap:
    """One device link's mirror."""

    def __init__(self, device: str, baud: int, clock: Callable[[], float]) -> None:
        self.device = device
        self.baud = baud
        self._clock = clock
        self.listeners: dict[asyncio.StreamWriter, int] = {}  # writer -> records it lost
        self.dropped = 0

    def __call__(self, direction: Direction, data: bytes) -> None:
        wall_ns = round(self._clock() * 1e6) * 1000  # microseconds: what a float holds
        records = build_records(direction, wall_ns, data)
        for writer, lost in list(self.listeners.items()):
            if writer.transport.get_write_buffer_size() > MAX_BUFFERED:
                self.listeners[writer] = lost + 1
                self.dropped += 1
                continue
            if lost:
                writer.write(build_records(Direction.LOST, wall_ns, struct.pack(">I", lost)))
                self.listeners[writer] = 0
            writer.write(records)


class TapServer:
    """The tap socket: a listener names a device and receives its link's bytes."""

    def __init__(self, path: Path, taps: dict[str, LinkTap]) -> None:
        self.path = path
        self.taps = taps
        self.ready = asyncio.Event()

    async def run(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_mask = os.umask(0o077)  # owner only, from the moment the socket exists
        try:
            with unix_address(self.path) as address:
                listener.bind(address)
        except OSError:
            listener.close()
            raise
        finally:
            os.umask(old_mask)
        server = await asyncio.start_unix_server(self._serve, sock=listener, limit=MAX_REQUEST)
        self.ready.set()
        try:
            async with server:
                await server.serve_forever()
        finally:
            self.ready.clear()
            self.path.unlink(missing_ok=True)
            for tap in self.taps.values():  # listeners hear the end; their handlers return
                for writer in tap.listeners:
                    writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tap: LinkTap | None = None
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                line = await reader.readline()
            name = line.decode("utf-8", "replace").strip()
            tap = self.taps.get(name)
            if tap is None:
                known = ", ".join(sorted(self.taps))
                await self._answer(writer, {"error": f"no device {name!r}; known: {known}"})
                return
            tap.listeners[writer] = 0  # before the answer: a listener misses nothing after it
            await self._answer(writer, {"device": tap.device, "baud": tap.baud})
            log.info("link tap opened on %s", name)
            while await reader.read(1024):  # until the listener hangs up
                pass
        except (TimeoutError, ValueError, ConnectionError) as exc:
            log.info("link tap request refused: %s", exc or type(exc).__name__)
        finally:
            if tap is not None and tap.listeners.pop(writer, None) is not None:
                log.info("link tap closed on %s", tap.device)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    @staticmethod
    async def _answer(writer: asyncio.StreamWriter, body: dict[str, object]) -> None:
        writer.write(json.dumps(body).encode() + b"\n")
        await writer.drain()
