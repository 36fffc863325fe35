"""Offload one camera card to onboard storage: copy, hash, re-read, compare, record.

Each clip file not yet offloaded (or changed since) is copied to `<store>/<camera>/<name>`
while its source is hashed (xxHash64); the copy is then read back and hashed on its own. Only
if the two agree is it recorded: in the offload index (which the format guard reads) and, for
the whole run, as one generation of the ASC MHL history at the store's root. A copy that
disagrees is made again (`retries`), then reported failed and left out of both.

Run as a worker process (`python -m firmware_host.dailies.offload`, `cupola offload`): hashing
gigabytes must never hold the daemon's event loop. It prints one JSON object per line:
`progress` (bytes done and total, rate, ETA), `verified`, `retry`, `failed`, then `done`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware_host.dailies.hashing import copy_hashed, xxh64_file
from firmware_host.dailies.index import Offloaded, OffloadIndex
from firmware_host.dailies.mhl import HashedFile, record_generation
from firmware_host.dailies.offload_args import add_arguments
from protocols.media import is_clip_file

Report = Callable[[dict[str, Any]], None]
Copier = Callable[[Path, Path, Callable[[int], None]], str]
PROGRESS_EVERY_S = 0.5
EXIT_ERROR = 2


@dataclass
class OffloadResult:
    verified: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # name: why
    skipped: int = 0  # already offloaded and unchanged
    bytes: int = 0
    seconds: float = 0.0
    mhl_failed: list[str] = field(default_factory=list)  # hash disagrees with the history


def pending(card: Path, camera: str, index: OffloadIndex) -> list[Path]:
    """The card's whole clip files not yet offloaded (or changed since), by name."""
    if not card.is_dir():
        return []
    files = sorted(p for p in card.iterdir() if p.is_file() and is_clip_file(p.name))
    return [p for p in files if not index.is_current(camera, p)]


class _Progress:
    def __init__(self, total: int, report: Report, clock: Callable[[], float]) -> None:
        self.total = total
        self.done = 0
        self.report = report
        self.clock = clock
        self.started = clock()
        self._last = 0.0

    def add(self, size: int) -> None:
        self.done += size
        now = self.clock()
        if now - self._last >= PROGRESS_EVERY_S or self.done >= self.total:
            self._last = now
            elapsed = max(now - self.started, 1e-6)
            rate = self.done / elapsed
            eta = round((self.total - self.done) / rate, 1) if rate > 0 else None
            self.report({"kind": "progress", "done": self.done, "total": self.total,
                         "rate_bytes_per_s": round(rate), "eta_s": eta})  # fmt: skip


def offload_card(
    card: Path,
    camera: str,
    store: Path,
    index: OffloadIndex,
    *,
    report: Report = lambda _: None,
    retries: int = 1,
    copier: Copier = copy_hashed,
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
) -> OffloadResult:
    files = pending(card, camera, index)
    result = OffloadResult()
    started = clock()
    # Each file is read twice (source while copying, then the copy): that is the work to do.
    progress = _Progress(2 * sum(p.stat().st_size for p in files), report, clock)
    hashed: list[HashedFile] = []
    (store / camera).mkdir(parents=True, exist_ok=True)
    for source in files:
        target = store / camera / source.name
        earlier = index.get(camera, source.name)
        if earlier is not None and target.exists():
            # Offloaded before, and the card's file changed since: never overwrite a verified
            # copy. The same content again (touched, not changed) is simply current again.
            stat = source.stat()
            progress.total -= stat.st_size  # read once, not twice
            if xxh64_file(source, progress.add) == earlier.xxh64:
                index.record(Offloaded(camera, source.name, stat.st_size, stat.st_mtime_ns,
                                       earlier.xxh64, earlier.copy, wall()))  # fmt: skip
                result.verified.append(source.name)
                continue
            why = "differs from its verified copy: the card's file changed; the copy is kept"
            result.failed[source.name] = why
            report({"kind": "failed", "camera": camera, "name": source.name, "why": why})
            continue
        why = ""
        for attempt in range(retries + 1):
            stat = source.stat()
            source_hash = copier(source, target, progress.add)
            copy_hash = xxh64_file(target, progress.add)
            if source_hash == copy_hash:
                break
            why = f"copy hashes {copy_hash}, source {source_hash}"
            if attempt < retries:
                progress.total += 2 * stat.st_size
                report({"kind": "retry", "camera": camera, "name": source.name, "why": why})
        else:
            target.unlink(missing_ok=True)  # never leave a bad copy looking like footage
            result.failed[source.name] = why
            report({"kind": "failed", "camera": camera, "name": source.name, "why": why})
            continue
        copy_stat = target.stat()
        hashed.append(HashedFile(target, copy_stat.st_size, copy_stat.st_mtime, copy_hash))
        index.record(
            Offloaded(camera, source.name, stat.st_size, stat.st_mtime_ns, copy_hash,
                      f"{camera}/{source.name}", wall())
        )  # fmt: skip
        result.verified.append(source.name)
        result.bytes += stat.st_size
        report({"kind": "verified", "camera": camera, "name": source.name,
                "size": stat.st_size, "xxh64": copy_hash})  # fmt: skip
    if hashed:
        failed = record_generation(store, hashed, comment=f"offload of {camera}'s card {card}")
        result.mhl_failed = [str(p.relative_to(store)) for p in failed]
    result.seconds = clock() - started
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cupola offload", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Offload, one JSON line per step on stdout; 0 all verified, 1 some failed, 2 the
    offload could not go on (an `error` line says why)."""

    def report(line: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()

    try:
        index = OffloadIndex(args.index)
        try:
            result = offload_card(
                args.card, args.camera, args.store, index, report=report, retries=args.retries
            )
        finally:
            index.close()
    except Exception as exc:  # a full disk, an unreadable card, a damaged history: say so
        report({"kind": "error", "camera": args.camera, "why": f"{type(exc).__name__}: {exc}"})
        return EXIT_ERROR
    rate = result.bytes / result.seconds if result.seconds > 0 else 0.0
    report({"kind": "done", "camera": args.camera, "verified": len(result.verified),
            "failed": result.failed, "mhl_failed": result.mhl_failed, "bytes": result.bytes,
            "seconds": round(result.seconds, 3), "rate_bytes_per_s": round(rate)})  # fmt: skip
    return 1 if result.failed or result.mhl_failed else 0


if __name__ == "__main__":
    sys.exit(main())
