"""The file downlink in-process, on virtual time: segments acknowledged, a flipped byte caught
and the segment sent again, a loss of signal and a `kill -9` of the sender both resumed
without sending an acknowledged segment again, the file verified against its MHL hash."""

from __future__ import annotations

import asyncio
import datetime
import itertools
import random
from pathlib import Path
from typing import Any

import msgspec
import pytest

from firmware_host.budget.downlink import ContactWindow, DownlinkBudget
from firmware_host.commands.dispatcher import CommandRejected
from firmware_host.dailies.allocation import BulkAllocator
from firmware_host.dailies.downlink import FileQueue, FileSender
from firmware_host.dailies.hashing import xxh64_file
from firmware_host.events import Event, EventBus
from protocols import filelink
from protocols.filelink import FileAck
from tests.virtual_time import run_virtual
from tools.receive import Receiver

WINDOW_OPENS = datetime.datetime(2026, 11, 27, 10, tzinfo=datetime.UTC).timestamp()
CHUNK = 4096


class Link:
    """The space link: carries what the node publishes to the receiver, in order, unless it
    is down (loss of signal) or a byte is flipped on the way."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.up = True
        self.flip: set[int] = set()  # segment indexes to corrupt, once each
        self.sends: list[tuple[float, int]] = []  # (when, segment index) of every chunk sent

    async def publish(self, leaf: str, payload: bytes, qos: int) -> bool:
        if not self.up:
            return False
        if leaf == filelink.CHUNK:
            index = filelink.decode_chunk(payload).index
            self.sends.append((asyncio.get_running_loop().time(), index))
            if index in self.flip:
                self.flip.discard(index)
                damaged = bytearray(payload)
                damaged[filelink.HEADER_SIZE + 7] ^= 0x20
                payload = bytes(damaged)
        await asyncio.sleep(0.05)  # the way down
        if self.up:  # lost if the signal went meanwhile
            self.receiver.on_message(f"cupola/v1/n/{leaf}", payload)
        return True


class Rig:
    def __init__(self, tmp_path: Path, size: int) -> None:
        self.tmp = tmp_path
        self.file = tmp_path / "A001C002_proxy.mp4"
        self.file.write_bytes(random.Random(7).randbytes(size))
        self.receiver = Receiver(tmp_path / "ground")
        self.link = Link(self.receiver)
        self.events: list[Event] = []
        self.bus = EventBus()
        self.bus.subscribe(self.events.append)
        self.saved: list[dict[str, Any]] = []
        self.acked_at: dict[int, float] = {}
        self.sender: FileSender  # built inside the loop: its clock is the loop's

    def start(self) -> None:
        self.sender = self.build()

    def wall(self) -> float:
        return WINDOW_OPENS + asyncio.get_running_loop().time()

    def build(self) -> FileSender:
        """A sender as a (re)started daemon makes it: from what is on disk."""
        budget = DownlinkBudget(bytes_per_day=1e9, windows=[ContactWindow(36_000, 1200)],
                                link_bytes_per_s=20_000, proxy_kbps=1, clock=self.wall)  # fmt: skip
        allocator = BulkAllocator(budget, clock=self.wall, save=self.saved.append,
                                  saved=self.saved[-1] if self.saved else None)  # fmt: skip
        return FileSender(FileQueue(self.tmp / "downlink.db"), allocator, self.link.publish,
                          lambda: self.link.up, self.bus,
                          clock=lambda: asyncio.get_running_loop().time())  # fmt: skip

    async def ground(self) -> None:
        """`cupola receive`'s acknowledgements, every half second."""
        while True:
            await asyncio.sleep(0.5)
            if not self.link.up:
                continue
            for args in self.receiver.acks():
                ack = msgspec.convert(args, FileAck)
                for first, last in ack.have:
                    for index in range(first, last + 1):
                        self.acked_at.setdefault(index, asyncio.get_running_loop().time())
                await self.sender.ack(ack)

    def resent_after_ack(self) -> list[int]:
        return [i for when, i in self.link.sends if i in self.acked_at and when > self.acked_at[i]]


async def _until(predicate: Any, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.1)


def test_a_file_arrives_whole_through_a_flipped_byte_a_loss_of_signal_and_a_crash(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path, 200_000)  # 49 segments, about 10 s at 20 kB/s

    async def main() -> None:
        rig.start()
        file_id = rig.sender.enqueue(rig.file, name=rig.file.name, folder="cam-a",
                                     xxh64=xxh64_file(rig.file), chunk_bytes=CHUNK,
                                     day=datetime.date(2026, 11, 27))  # fmt: skip
        rig.link.flip = {3}
        ground = asyncio.create_task(rig.ground())
        sending = asyncio.create_task(rig.sender.run())
        await _until(lambda: len(rig.acked_at) >= 12, 30)
        rig.link.up = False  # loss of signal mid-transfer
        await asyncio.sleep(20)
        rig.link.up = True
        await _until(lambda: len(rig.acked_at) >= 30, 60)
        sending.cancel()  # kill -9: nothing of the sender's memory survives
        await asyncio.gather(sending, return_exceptions=True)
        rig.sender.queue.close()
        rig.sender = rig.build()
        assert rig.sender.files[file_id].acked_count() >= 30  # what was acknowledged, kept
        sending = asyncio.create_task(rig.sender.run())
        await _until(lambda: not rig.sender.files, 120)
        sending.cancel()
        ground.cancel()
        await asyncio.gather(sending, ground, return_exceptions=True)

    run_virtual(main())
    received = tmp_path / "ground" / "2026-11-27" / "cam-a" / rig.file.name
    assert received.read_bytes() == rig.file.read_bytes()
    assert rig.receiver.rejected >= 1  # the flipped byte: caught by the CRC, not accepted
    assert [i for _, i in rig.link.sends].count(3) >= 2  # ... and segment 3 sent again
    assert rig.resent_after_ack() == []  # never an acknowledged segment again
    assert any(e.name == "downlink.delivered" for e in rig.events)
    assert rig.sender.queue.delivered_count() == 1


def test_a_file_whose_whole_hash_differs_is_sent_again(tmp_path: Path) -> None:
    rig = Rig(tmp_path, 20_000)

    async def main() -> None:
        rig.start()
        rig.sender.enqueue(rig.file, name=rig.file.name, folder="cam-a", xxh64="0" * 16,
                           chunk_bytes=CHUNK)  # fmt: skip
        ground = asyncio.create_task(rig.ground())
        sending = asyncio.create_task(rig.sender.run())
        await _until(lambda: any(e.name == "downlink.restarted" for e in rig.events), 60)
        sending.cancel()
        ground.cancel()
        await asyncio.gather(sending, ground, return_exceptions=True)

    run_virtual(main())
    assert not list((tmp_path / "ground").glob("*/cam-a/*"))  # never filed as footage


def test_acknowledgements_are_checked(tmp_path: Path) -> None:
    rig = Rig(tmp_path, 10_000)

    async def main() -> None:
        rig.start()
        file_id = rig.sender.enqueue(rig.file, name="x.mp4", folder="cam-a", xxh64="0" * 16,
                                     chunk_bytes=CHUNK)  # fmt: skip
        with pytest.raises(CommandRejected, match="not within the file's 3 segments"):
            await rig.sender.ack(FileAck(file_id=file_id, have=[[0, 3]]))
        with pytest.raises(CommandRejected, match="no file 99"):
            await rig.sender.ack(FileAck(file_id=99))
        done = await rig.sender.ack(FileAck(file_id=file_id, have=[[0, 1]]))
        assert done == {"file_id": file_id, "acked": 2, "of": 3, "state": "sending"}

    run_virtual(main())


def test_the_receiver_refuses_what_is_not_a_whole_segment(tmp_path: Path) -> None:
    receiver = Receiver(tmp_path)
    meta = filelink.FileMeta(file_id=1, name="a.mp4", folder="cam-a", day="2026-11-27",
                             size=10, chunk_bytes=4, chunks=3, xxh64="0" * 16)  # fmt: skip
    receiver.on_meta(msgspec.json.encode(meta))
    good = filelink.encode_chunk(filelink.Chunk(1, 0, 3, b"abcd"))
    receiver.on_chunk(good[:-5] + good[-4:])  # truncated
    receiver.on_chunk(filelink.encode_chunk(filelink.Chunk(1, 2, 3, b"abcd")))  # last is 2 bytes
    receiver.on_chunk(filelink.encode_chunk(filelink.Chunk(2, 0, 3, b"abcd")))  # unknown file
    receiver.on_chunk(b"\x00" * 3)
    assert receiver.rejected == 4 and receiver.segments == 0
    receiver.on_chunk(good)
    assert receiver.acks() == [
        {"file_id": 1, "have": [[0, 0]], "verified": False, "restart": False},
        {"file_id": 2, "need_meta": True},
    ]
    again = Receiver(tmp_path)  # a restarted receiver keeps what it acknowledged
    assert again.files[1].have == {0}


def test_cupola_receive_refuses_a_key_it_cannot_read(tmp_path: Path) -> None:
    import subprocess
    import sys

    junk = tmp_path / "junk.key"
    junk.write_text("not a key")
    bad = subprocess.run(
        [sys.executable, "-m", "tools.cli", "receive", "--out", str(tmp_path / "d"),
         "--broker", "mqtt://127.0.0.1:1", "--key", str(junk)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert bad.returncode == 66 and "key file unreadable" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_with_nobody_listening_resends_slow_down(tmp_path: Path) -> None:
    rig = Rig(tmp_path, 1000)  # one segment
    rig.link.receiver = Receiver(tmp_path / "deaf")  # receives, never acknowledges

    async def main() -> None:
        rig.start()
        rig.sender.resend_after_s = 2.0
        rig.sender.enqueue(rig.file, name="x.mp4", folder="cam-a", xxh64="0" * 16,
                           chunk_bytes=CHUNK)  # fmt: skip
        sending = asyncio.create_task(rig.sender.run())
        await asyncio.sleep(100)
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)

    run_virtual(main())
    times = [when for when, _ in rig.link.sends]
    gaps = [round(b - a) for a, b in itertools.pairwise(times)]
    assert gaps[:5] == [2, 4, 8, 16, 32]  # doubling, then 16 x 2 s at most
    assert len(times) <= 7
