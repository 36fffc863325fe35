"""Dailies: offload throughput beside `cp` + `xxhsum` on the same files, and the file
downlink's goodput against the bulk allocation of a contact window.

Offload (`python -m bench.dailies`): N files of random bytes on a "card" folder, then, in
the same run and alternating, (a) Cupola's offload (copy hashing the source, read the copy
back and hash it, compare, record an ASC MHL generation), (b) `cp` then `xxhsum -H1` of the
copies (one hash pass: the least a checked copy takes), (c) `cp` then `xxhsum -H1` of the
source and of the copies (the same verification as (a)). The page cache is warm for all.

Downlink: a sender and a receiver in-process, in real time, through one contact window of
`WINDOW_S` whose grant the backlog exceeds, with no loss and with 2 % of segments lost;
goodput is the file bytes the ground acknowledged, against the window's grant.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import msgspec

from bench.machine import describe
from firmware_host.budget.downlink import ContactWindow, DownlinkBudget
from firmware_host.dailies.allocation import BulkAllocator
from firmware_host.dailies.downlink import FileQueue, FileSender
from firmware_host.dailies.hashing import xxh64_file
from firmware_host.dailies.index import OffloadIndex
from firmware_host.dailies.offload import offload_card
from firmware_host.events import EventBus
from protocols import filelink
from protocols.filelink import FileAck
from tools.receive import Receiver

FILES = 6
FILE_MB = 64
ROUNDS = 3


def _cp_then_hash(card: Path, target: Path, hash_source: bool) -> float:
    started = time.perf_counter()
    target.mkdir(parents=True)
    subprocess.run(["cp", *map(str, sorted(card.iterdir())), str(target)], check=True)
    copies = sorted(str(p) for p in target.iterdir())
    sources = sorted(str(p) for p in card.iterdir()) if hash_source else []
    subprocess.run(["xxhsum", "-H1", *sources, *copies], check=True, capture_output=True)
    os.sync()
    return time.perf_counter() - started


def _offload(card: Path, work: Path) -> float:
    started = time.perf_counter()
    index = OffloadIndex(work / "offload.db")
    result = offload_card(card, "cam-a", work / "store", index)
    index.close()
    assert not result.failed, result.failed
    return time.perf_counter() - started


def offload_figures(files: int = FILES) -> list[tuple[str, float]]:
    root = Path(tempfile.mkdtemp(prefix="cupola-bench-dailies-"))
    try:
        card = root / "card"
        card.mkdir()
        rng = random.Random(1)
        for i in range(files):
            (card / f"A001C{i + 1:03d}.mov").write_bytes(rng.randbytes(FILE_MB * 1_000_000))
        total = files * FILE_MB
        times: dict[str, list[float]] = {"offload": [], "cp+xxhsum": [], "cp+xxhsum x2": []}
        for n in range(ROUNDS):
            times["offload"].append(_offload(card, root / f"o{n}"))
            times["cp+xxhsum"].append(_cp_then_hash(card, root / f"c{n}", hash_source=False))
            times["cp+xxhsum x2"].append(_cp_then_hash(card, root / f"d{n}", hash_source=True))
            for folder in (f"o{n}", f"c{n}", f"d{n}"):
                shutil.rmtree(root / folder)
        return [(name, total / statistics.median(t)) for name, t in times.items()]
    finally:
        shutil.rmtree(root, ignore_errors=True)


OPENS = datetime.datetime(2026, 11, 27, 10, tzinfo=datetime.UTC).timestamp()
WINDOW_S = 15.0
LINK = 250_000.0  # bytes per second for files: 2 Mbit/s
CHUNK = 16_384


def downlink_goodput(loss: float) -> tuple[float, float, float]:
    """(grant, file bytes acknowledged, bytes published) over one window, in real time."""

    async def main() -> tuple[float, float, float]:
        loop = asyncio.get_running_loop()
        started = loop.time()

        def wall() -> float:  # the run starts as the window opens
            return OPENS + loop.time() - started

        work = Path(tempfile.mkdtemp(prefix="cupola-bench-downlink-"))
        rng = random.Random(2)
        receiver = Receiver(work / "ground")
        budget = DownlinkBudget(bytes_per_day=5e9, windows=[ContactWindow(36_000, WINDOW_S)],
                                link_bytes_per_s=LINK, proxy_kbps=1, clock=wall)  # fmt: skip
        allocator = BulkAllocator(budget, clock=wall)

        async def publish(leaf: str, payload: bytes, qos: int) -> bool:
            if leaf == filelink.CHUNK and rng.random() < loss:
                return True  # lost on the way
            receiver.on_message(f"cupola/v1/n/{leaf}", payload)
            return True

        sender = FileSender(FileQueue(work / "downlink.db"), allocator, publish, lambda: True,
                            EventBus(), clock=loop.time, resend_after_s=2.0)  # fmt: skip
        for i in range(4):  # more than the window carries
            path = work / f"proxy{i}.mp4"
            path.write_bytes(rng.randbytes(int(LINK * WINDOW_S / 2)))
            sender.enqueue(path, name=path.name, folder="cam-a", xxh64=xxh64_file(path),
                           chunk_bytes=CHUNK)  # fmt: skip

        async def ground() -> None:
            while True:
                await asyncio.sleep(0.5)
                for args in receiver.acks():
                    await sender.ack(msgspec.convert(args, FileAck))

        grant = allocator.grant()
        assert grant is not None
        tasks = [asyncio.create_task(sender.run()), asyncio.create_task(ground())]
        await asyncio.sleep(WINDOW_S + 1.0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        acked = sum(min(len(f.have) * CHUNK, f.meta.size) for f in receiver.files.values())
        sender.queue.close()
        shutil.rmtree(work, ignore_errors=True)
        return grant.grant, float(acked), float(sender.bytes_sent)

    return asyncio.run(main())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 files, the lossless window only")
    args = parser.parse_args(argv)
    files = 2 if args.quick else FILES
    print(f"Dailies (python -m bench.dailies) on {describe()}")
    figures = offload_figures(files)
    peer = dict(figures)
    print(f"offload of {files} x {FILE_MB} MB, median of {ROUNDS}, warm page cache:")
    for name, rate in figures:
        print(f"  {name:14} {rate:7.0f} MB/s   ({rate / peer['cp+xxhsum x2']:.2f}x cp+xxhsum x2)")
    for loss in (0.0,) if args.quick else (0.0, 0.02):
        grant, acked, sent = downlink_goodput(loss)
        print(f"downlink, {loss:.0%} of segments lost: grant {grant / 1e6:.1f} MB in "
              f"{WINDOW_S:.0f} s; acknowledged {acked / 1e6:.1f} MB = {acked / grant:.3f}x the "
              f"grant; published {sent / 1e6:.1f} MB = {sent / grant:.3f}x")  # fmt: skip


if __name__ == "__main__":
    main()
