"""Housekeeping is never delayed by file traffic: events and results queued while a file goes
down reach the link as soon as they would with no file at all, give or take the one segment
on the wire when they come (the two classes have separate allocations that together fit the
link, and segments take no QoS 1 slot)."""

from __future__ import annotations

import asyncio
import datetime
import itertools
import random
from collections.abc import Callable
from pathlib import Path

from firmware_host.budget.downlink import ContactWindow, DownlinkBudget
from firmware_host.dailies.allocation import BulkAllocator
from firmware_host.dailies.downlink import FileQueue, FileSender
from firmware_host.events import EventBus
from firmware_host.groundlink.outbox import URGENT, Outbox
from firmware_host.groundlink.pacing import Pacer
from firmware_host.groundlink.stream import StreamPublisher
from tests.virtual_time import run_virtual

OPENS = datetime.datetime(2026, 11, 27, 10, tzinfo=datetime.UTC).timestamp()
LINK = 40_000.0  # bytes per second on the wire
HOUSEKEEPING = 8_000.0
CHUNK = 2048


class Wire:
    """One link: a message occupies it for its size at the link's rate, one after another."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.events: list[tuple[float, int]] = []  # (on the wire, seq)
        self.file_bytes = 0
        self.on_ack: Callable[[int, bool], None] = lambda mid, refused: None
        self.mids = itertools.count(1)
        self.sending: set[asyncio.Task[None]] = set()

    def listen(self, on_ack: Callable[[int, bool], None]) -> None:
        self.on_ack = on_ack

    def publish(self, topic: str, payload: bytes) -> int:
        """As paho: queued at once, acknowledged once it has crossed the wire."""
        mid = next(self.mids)
        task = asyncio.create_task(self._publish(mid, topic, payload))
        self.sending.add(task)
        task.add_done_callback(self.sending.discard)
        return mid

    async def send(self, size: int) -> None:
        async with self.lock:
            await asyncio.sleep(size / LINK)

    async def _publish(self, mid: int, topic: str, payload: bytes) -> None:
        await self.send(len(payload))
        if topic.endswith("/event"):
            seq = int(payload.split(b'"seq":')[1].split(b",")[0])
            self.events.append((asyncio.get_running_loop().time(), seq))
        self.on_ack(mid, False)

    async def file(self, leaf: str, payload: bytes, qos: int) -> bool:
        await self.send(len(payload))
        self.file_bytes += len(payload)
        return True


def _latencies(tmp_path: Path, *, with_file: bool) -> tuple[list[float], int]:
    async def main() -> tuple[list[float], int]:
        loop = asyncio.get_running_loop()
        wire = Wire()
        outbox = Outbox(tmp_path / "outbox.db", max_bytes=10**7)
        stream = StreamPublisher("n", outbox, Pacer(HOUSEKEEPING, clock=loop.time))
        reachable = asyncio.Event()
        reachable.set()
        tasks = [asyncio.create_task(stream.drain(wire, lambda: 0.0, reachable))]
        if with_file:
            budget = DownlinkBudget(
                bytes_per_day=1e9, windows=[ContactWindow(36_000, 600)], link_bytes_per_s=LINK,
                proxy_kbps=1, housekeeping_bytes_per_s=HOUSEKEEPING,
                clock=lambda: OPENS + loop.time(),
            )  # fmt: skip
            sender = FileSender(FileQueue(tmp_path / "downlink.db"),
                                BulkAllocator(budget, clock=lambda: OPENS + loop.time()),
                                wire.file, lambda: True, EventBus(), clock=loop.time)  # fmt: skip
            big = tmp_path / "big.mp4"
            big.write_bytes(random.Random(1).randbytes(2_000_000))
            sender.enqueue(big, name="big.mp4", folder="cam-a", xxh64="0" * 16, chunk_bytes=CHUNK)
            tasks.append(asyncio.create_task(sender.run()))
        queued: dict[int, float] = {}
        for i in range(40):
            await asyncio.sleep(0.37)
            outbox.append("event", {"name": "take.noted", "i": i}, URGENT)
            queued[i] = loop.time()
            stream.notify()
        await asyncio.sleep(5)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        outbox.close()
        # seq n is the n-th event queued (nothing else goes through this outbox)
        return [when - queued[seq - 1] for when, seq in wire.events], wire.file_bytes

    return run_virtual(main())


def test_events_go_out_as_if_no_file_were_going_down(tmp_path: Path) -> None:
    alone, _ = _latencies(tmp_path / "alone", with_file=False)
    beside, file_bytes = _latencies(tmp_path / "beside", with_file=True)
    assert len(alone) == len(beside) == 40
    assert file_bytes > 0.8 * (LINK - HOUSEKEEPING) * 15  # the file did use its share
    one_segment = (CHUNK + 100) / LINK
    for quiet, busy in zip(alone, beside, strict=True):
        assert busy <= quiet + one_segment + 1e-6, (quiet, busy)
