"""The dailies as the daemon runs them: offload workers, the format guard, their status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from firmware_host.dailies.config import DailiesConfig
from firmware_host.dailies.service import DailiesService
from firmware_host.events import EventBus
from firmware_host.supervisor import Supervisor


class Dailies:
    def __init__(self, config: DailiesConfig, state_dir: Path, bus: EventBus) -> None:
        self.config = config
        self.offload = DailiesService(config, state_dir, bus)

    def supervise(self, supervisor: Supervisor) -> None:
        supervisor.add("offload", self.offload.run)

    def status(self) -> dict[str, Any]:
        """For telemetry (the monitor): each card's offload."""
        return {"offload": self.offload.status()}

    def close(self) -> None:
        self.offload.close()
