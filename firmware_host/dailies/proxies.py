"""Proxies of circled takes: transcoded with ffmpeg, recorded in the MHL, queued for the ground.

A circled take's proxy is made from the verified onboard copy of its first camera's clip (so
it waits for the offload), at a bitrate sized to what is left of the day's bulk allocation
(never above `proxy_kbps`), in a subprocess. The proxy gets its own ASC MHL generation, and
the hash recorded there is the one the ground checks it against. Requests survive a restart
(the ledger); a proxy already queued for the ground is not made twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from firmware_host.budget.downlink import DownlinkBudget
from firmware_host.budget.ledger import BudgetLedger
from firmware_host.dailies.background import in_background
from firmware_host.dailies.downlink import FileSender
from firmware_host.dailies.hashing import xxh64_file
from firmware_host.dailies.index import OffloadIndex
from firmware_host.dailies.mhl import HashedFile, record_generation
from firmware_host.events import EventBus
from firmware_host.workflow.shotlog import ShotLog
from protocols.media import clip_file_name
from protocols.messages.common import Severity

log = logging.getLogger(__name__)
LEDGER_KEY = "dailies.proxies"
MIN_KBPS = 16.0
SHARE_OF_DAY = 0.5  # one proxy takes at most this share of what is left of the day


def transcode_args(source: Path, target: Path, kbps: float, height: int) -> list[str]:
    return [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(source),
        "-vf", f"scale=-2:{height}", "-c:v", "libx264", "-preset", "veryfast",
        "-b:v", f"{kbps:.0f}k", "-maxrate", f"{kbps:.0f}k", "-bufsize", f"{2 * kbps:.0f}k",
        "-an", "-movflags", "+faststart", "-f", "mp4", str(target),
    ]  # fmt: skip


class ProxyMaker:
    def __init__(
        self,
        *,
        store: Path,
        index: OffloadIndex,
        shotlog: ShotLog,
        sender: FileSender,
        budget: DownlinkBudget,
        ledger: BudgetLedger,
        bus: EventBus,
        chunk_bytes: int,
        max_kbps: float,
        height: int,
    ) -> None:
        self.store = store
        self.index = index
        self.shotlog = shotlog
        self.sender = sender
        self.budget = budget
        self.ledger = ledger
        self.bus = bus
        self.chunk_bytes = chunk_bytes
        self.max_kbps = max_kbps
        self.height = height
        saved = ledger.get(LEDGER_KEY) or {}
        self.waiting: dict[int, float] = {int(k): float(v) for k, v in saved.items()}
        self._wakeup = asyncio.Event()

    def request(self, take_id: int, duration_s: float) -> None:
        """A take was circled (DataBudgets' proxy sink)."""
        self.waiting[take_id] = duration_s
        self._save()
        self._wakeup.set()

    def wake(self, *_: Any) -> None:
        self._wakeup.set()

    def _save(self) -> None:
        self.ledger.put(LEDGER_KEY, {str(k): v for k, v in self.waiting.items()})

    def kbps(self, duration_s: float) -> float:
        """Sized to the day: at most a share of what is left of today's bulk allocation."""
        left = max(0.0, self.budget.bytes_per_day - self.budget.used_today())
        fitting = left * SHARE_OF_DAY * 8 / 1000 / max(duration_s, 1.0)
        return max(MIN_KBPS, min(self.max_kbps, fitting))

    async def run(self) -> None:
        while True:
            self._wakeup.clear()  # before looking: a request while making one is not missed
            for take_id in list(self.waiting):
                await self._make(take_id)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(30.0):
                    await self._wakeup.wait()

    def _source(self, take_id: int) -> tuple[str, str, Path] | None:
        """(camera, clip file, verified copy) of the take's first camera, once offloaded."""
        takes = self.shotlog.query(take_id=take_id, limit=1)
        if not takes:
            return None
        clips = [c for c in takes[0]["clips"] if (c["frames"] or 0) > 0]
        if not clips:
            return None
        first = min(clips, key=lambda c: c["camera"])
        name = clip_file_name(takes[0]["roll"], first["clip_id"])
        entry = self.index.get(first["camera"], name)
        if entry is None:
            return None  # not offloaded yet: made once it is
        return first["camera"], name, self.store / entry.copy

    async def _make(self, take_id: int) -> None:
        source = self._source(take_id)
        if source is None:
            return
        camera, name, copy = source
        duration = self.waiting[take_id]
        kbps = self.kbps(duration)
        target = self.store / "proxies" / camera / f"{Path(name).stem}_proxy.mp4"
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        process = await asyncio.create_subprocess_exec(
            *in_background(transcode_args(copy, partial, kbps, self.height)),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            _, err = await process.communicate()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise
        if process.returncode != 0:
            partial.unlink(missing_ok=True)
            self.waiting.pop(take_id)
            self._save()
            said = err.decode(errors="replace").strip()[-200:]
            self.bus.emit("proxy.failed", Severity.WARNING,
                          f"take {take_id}: no proxy of {camera}/{name}: ffmpeg said {said}",
                          take_id=take_id)  # fmt: skip
            return
        partial.replace(target)
        digest = await asyncio.to_thread(xxh64_file, target)
        stat = target.stat()
        await asyncio.to_thread(
            record_generation, self.store,
            [HashedFile(target, stat.st_size, stat.st_mtime, digest)],
            comment=f"proxy of take {take_id} ({camera}/{name})",
        )  # fmt: skip
        file_id = self.sender.enqueue(
            target, name=target.name, folder=camera, xxh64=digest, chunk_bytes=self.chunk_bytes,
            priority=0, kind="proxy", take_id=take_id,
        )  # fmt: skip
        self.waiting.pop(take_id)
        self._save()
        self.bus.emit("proxy.made", Severity.INFO,
                      f"take {take_id}: proxy of {camera}/{name} made ({stat.st_size / 1e3:.0f} kB "
                      f"at {kbps:.0f} kbit/s), queued for the ground", take_id=take_id,
                      file_id=file_id, size=stat.st_size, kbps=round(kbps))  # fmt: skip

    def status(self) -> dict[str, Any]:
        return {"waiting": sorted(self.waiting)}
