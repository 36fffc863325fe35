"""The dailies as the daemon runs them: offload workers and the format guard, proxies of
circled takes, and the file downlink inside the bulk allocation, with their status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from firmware_host.budget.data import DataBudgets
from firmware_host.budget.ledger import BudgetLedger
from firmware_host.clock import Clock
from firmware_host.commands.dispatcher import CommandSpec
from firmware_host.dailies.allocation import BulkAllocator
from firmware_host.dailies.config import DailiesConfig
from firmware_host.dailies.downlink import FileQueue, FileSender
from firmware_host.dailies.proxies import ProxyMaker
from firmware_host.dailies.service import DailiesService
from firmware_host.events import EventBus
from firmware_host.groundlink.mqtt import GroundLink
from firmware_host.supervisor import Supervisor
from firmware_host.workflow.shotlog import ShotLog

ALLOCATION_KEY = "dailies.bulk_window"


class Dailies:
    def __init__(
        self,
        config: DailiesConfig,
        state_dir: Path,
        bus: EventBus,
        *,
        data: DataBudgets,
        ledger: BudgetLedger,
        ground: GroundLink,
        shotlog: ShotLog,
        proxy_kbps: float,
        clock: Clock,
    ) -> None:
        self.config = config
        self.offload = DailiesService(config, state_dir, bus, clock=clock.wall)
        self.allocator = BulkAllocator(
            data.downlink, clock=data.downlink.clock,
            save=lambda saved: ledger.put(ALLOCATION_KEY, saved), saved=ledger.get(ALLOCATION_KEY),
        )  # fmt: skip
        self.queue = FileQueue(state_dir / "downlink.db")
        self.sender = FileSender(
            self.queue, self.allocator, ground.publish_file, ground.reachable.is_set, bus,
            clock=clock.monotonic, wall=clock.wall, resend_after_s=config.resend_after_s,
        )  # fmt: skip
        self.proxies = ProxyMaker(
            store=self.offload.store, index=self.offload.index, shotlog=shotlog,
            sender=self.sender, budget=data.downlink, ledger=ledger, bus=bus,
            chunk_bytes=config.chunk_bytes, max_kbps=config.proxy_kbps or proxy_kbps,
            height=config.proxy_height,
        )  # fmt: skip
        if config.proxies:
            data.proxy_sink = self.proxies.request
            self.offload.on_verified.append(self.proxies.wake)

    def supervise(self, supervisor: Supervisor) -> None:
        supervisor.add("offload", self.offload.run)
        supervisor.add("proxies", self.proxies.run)
        supervisor.add("file-downlink", self.sender.run)

    def commands(self) -> list[CommandSpec[Any]]:
        return self.sender.commands()

    def status(self) -> dict[str, Any]:
        """For telemetry (the monitor, the ground): each card's offload, the proxies waiting,
        the files queued for the ground with their ETA."""
        return {"dailies": {"offload": self.offload.status(), "proxies": self.proxies.status(),
                            "downlink": self.sender.status()}}  # fmt: skip

    def close(self) -> None:
        self.offload.close()
        self.queue.close()
