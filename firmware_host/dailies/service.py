"""Offload as the daemon runs it: a worker process per card, watched, never in the loop.

After every cut (and every `scan_s`) each configured card with clip files not yet offloaded
gets a worker (`python -m firmware_host.dailies.offload`, at the lowest CPU priority), whose
JSON lines become the offload status (bytes, rate, ETA: in telemetry for the monitor) and
events: `offload.done`, `offload.retry` (a copy disagreed and is made again), `offload.failed`
(critical: still wrong after the retries, or the worker died). The daemon's loop only reads
lines.

The format guard: a card may be formatted only when every clip the camera holds is a whole
file on the card, offloaded and verified (and unchanged since).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from firmware_host.dailies.background import in_background
from firmware_host.dailies.config import DailiesConfig
from firmware_host.dailies.index import OffloadIndex
from firmware_host.dailies.offload import pending
from firmware_host.devices.agent import DeviceAgent
from firmware_host.drivers.camera import CameraDriver
from firmware_host.events import Event, EventBus
from protocols.media import PARTIAL_SUFFIX, clip_file_name
from protocols.messages.common import Severity

log = logging.getLogger(__name__)
WRITING_POLL_S = 0.5


def _being_written(card: Path) -> bool:
    return card.is_dir() and any(p.name.endswith(PARTIAL_SUFFIX) for p in card.iterdir())


class DailiesService:
    def __init__(
        self,
        config: DailiesConfig,
        state_dir: Path,
        bus: EventBus,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.store = Path(config.store)
        self.cards = {camera: Path(folder) for camera, folder in config.cards.items()}
        self.index_path = state_dir / "offload.db"
        self.index = OffloadIndex(self.index_path)
        self.bus = bus
        self.clock = clock
        self.progress: dict[str, dict[str, Any]] = {}
        self.on_verified: list[Callable[[str, str], None]] = []  # (camera, file name)
        self._wakeup = asyncio.Event()
        bus.subscribe(self._on_event)

    def close(self) -> None:
        self.index.close()

    def _on_event(self, event: Event) -> None:
        if event.name == "take.cut":
            self._wakeup.set()

    def wake(self) -> None:
        self._wakeup.set()

    async def run(self) -> None:
        while True:
            self._wakeup.clear()  # before looking: a cut during an offload is not missed
            for camera, card in self.cards.items():
                if pending(card, camera, self.index):
                    await self.offload(camera, card)
            # A clip is written after its cut: while one is, look again soon.
            writing = any(_being_written(card) for card in self.cards.values())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(WRITING_POLL_S if writing else self.config.scan_s):
                    await self._wakeup.wait()

    async def offload(self, camera: str, card: Path) -> int:
        """One worker over one card; returns its exit status."""
        self.progress[camera] = {"state": "copying", "done": 0, "total": None,
                                 "rate_bytes_per_s": None, "eta_s": None}  # fmt: skip
        worker = [
            sys.executable, "-m", "firmware_host.dailies.offload",
            "--card", str(card), "--camera", camera, "--store", str(self.store),
            "--index", str(self.index_path), "--retries", str(self.config.retries),
        ]  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            *in_background(worker),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert process.stdout is not None and process.stderr is not None
        try:
            async for raw in process.stdout:
                self._line(camera, raw)
            err = await process.stderr.read()
            status = await process.wait()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise
        if status not in (0, 1):  # 1: it reported each failure itself
            why = (
                self.progress[camera].get("error")
                or (err.decode(errors="replace").strip().splitlines() or ["no message"])[-1]
            )
            self.bus.emit("offload.failed", Severity.CRITICAL,
                          f"{camera}: offload stopped (exit {status}): {why}; the card keeps "
                          "the only copy", source=camera)  # fmt: skip
        self.progress[camera]["state"] = "idle"
        return status

    def _line(self, camera: str, raw: bytes) -> None:
        try:
            line = json.loads(raw)
        except json.JSONDecodeError:
            log.warning("offload worker for %s said: %r", camera, raw[:200])
            return
        kind = line.get("kind")
        progress = self.progress[camera]
        if kind == "progress":
            progress.update({k: line[k] for k in ("done", "total", "rate_bytes_per_s", "eta_s")})
        elif kind == "verified":
            for callback in self.on_verified:
                callback(camera, line["name"])
        elif kind == "retry":
            self.bus.emit("offload.retry", Severity.WARNING,
                          f"{camera}: copy of {line['name']} did not verify ({line['why']}); "
                          "copying it again", source=camera, file=line["name"])  # fmt: skip
        elif kind == "failed":
            self.bus.emit("offload.failed", Severity.CRITICAL,
                          f"{camera}: {line['name']} could not be offloaded and verified "
                          f"({line['why']}); the card keeps the only copy", source=camera,
                          file=line["name"])  # fmt: skip
        elif kind == "error":
            progress["error"] = line["why"]
        elif kind == "done" and line["verified"]:
            rate = line["rate_bytes_per_s"] / 1e6
            self.bus.emit("offload.done", Severity.INFO,
                          f"{camera}: {line['verified']} clips offloaded and verified "
                          f"({line['bytes'] / 1e6:.1f} MB at {rate:.1f} MB/s)", source=camera,
                          verified=line["verified"], bytes=line["bytes"])  # fmt: skip

    def status(self) -> dict[str, Any]:
        """Per card: what is offloaded, what waits, and the worker's progress."""
        return {
            camera: {
                "offloaded": len(self.index.all(camera)),
                "waiting": len(pending(card, camera, self.index)),
                **self.progress.get(camera, {"state": "idle"}),
            }
            for camera, card in self.cards.items()
        }

    async def format_refusal(self, agent: DeviceAgent) -> str | None:
        """Why `agent`'s card may not be formatted now, or None (no card configured: the
        card is not Cupola's to guard)."""
        card = self.cards.get(agent.name)
        driver = agent.driver
        if card is None or not isinstance(driver, CameraDriver):
            return None
        names = []
        for clip_id in await driver.clip_ids():
            info = await driver.clip_info(clip_id)
            if info.frames > 0:
                names.append(clip_file_name(info.roll, info.clip_id))
        return self.refusal_for(agent.name, card, names)

    async def delete_refusal(self, agent: DeviceAgent, clip_id: int) -> str | None:
        """Why clip `clip_id` may not be deleted from `agent`'s card now, or None (a clip
        the camera does not have is the camera's to refuse)."""
        card = self.cards.get(agent.name)
        driver = agent.driver
        if card is None or not isinstance(driver, CameraDriver):
            return None
        if clip_id not in await driver.clip_ids():
            return None
        info = await driver.clip_info(clip_id)
        if info.frames <= 0:
            return None
        return self.refusal_for(agent.name, card, [clip_file_name(info.roll, clip_id)], "deleted")

    def refusal_for(
        self, camera: str, card: Path, names: list[str], done: str = "formatted"
    ) -> str | None:
        """Why a card holding the clip files `names` may not be formatted (or the clips
        `deleted`), or None."""
        unsafe = []
        for name in names:
            file = card / name
            if (card / (name + PARTIAL_SUFFIX)).exists() or not file.exists():
                unsafe.append(f"{name} (still being written)")
            elif not self.index.is_current(camera, file):
                unsafe.append(f"{name} (not offloaded and verified)")
        if not unsafe:
            return None
        shown = ", ".join(unsafe[:5]) + (f" and {len(unsafe) - 5} more" if len(unsafe) > 5 else "")
        return f"{camera}: not {done}: {len(unsafe)} clips have no verified copy: {shown}"
