"""The composition root: builds every component from the config and runs them supervised.

Data flows one way: serial bytes -> frames -> device state -> telemetry -> MQTT.
Commands flow back: MQTT -> command intake -> dispatcher -> drivers -> serial bytes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
from pathlib import Path
from typing import Any

from firmware_host.commands.devices import DeviceCommands, NoArgs
from firmware_host.commands.dispatcher import CommandSpec, Dispatcher
from firmware_host.config import Config
from firmware_host.devices.agent import DeviceAgent
from firmware_host.events import Event, EventBus
from firmware_host.groundlink.mqtt import GroundLink
from firmware_host.groundlink.stream import Stream
from firmware_host.health.limits import LimitMonitor, default_limits
from firmware_host.sdnotify import Notifier
from firmware_host.supervisor import Supervisor
from firmware_host.workflow.drift import DriftMonitor
from firmware_host.workflow.sequencer import SequenceRunner
from firmware_host.workflow.shotlog import ShotLog
from firmware_host.workflow.takes import TakeController
from firmware_host.workflow.timecode import ReferenceClock
from protocols import ground
from protocols.timecode import FrameRate

log = logging.getLogger(__name__)

COMMAND_IDLE_BEAT_S = 1.0


class Daemon:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.node = config.node.name
        self.started = time.time()
        state_dir = Path(config.node.state_dir)
        self.bus = EventBus()
        self.supervisor = Supervisor(self.bus)
        self.reference = ReferenceClock(FrameRate.from_fps(config.project.frame_rate))
        self.stream = Stream(self.node)
        self._bd_seq = 0
        self.ground = GroundLink(
            self.node,
            config.mqtt,
            self.stream,
            birth=self.birth,
            on_command=self._receive_command,
            bd_seq=self._next_bd_seq,
        )
        failsafe = config.failsafe
        self.devices: dict[str, DeviceAgent] = {
            d.name: DeviceAgent(
                d,
                self.bus,
                self.reference,
                self._device_updated,
                host_timeout_ms=round(failsafe.host_timeout_s * 1000),
                light_failsafe_permille=round(failsafe.light_pct * 10),
            )
            for d in config.devices
        }
        self.shotlog = ShotLog(state_dir / "shotlog.db")
        self.takes = TakeController(
            self.devices,
            self.reference,
            self.bus,
            self.shotlog,
            {g.name: g.cameras for g in config.groups},
            lead_s=config.project.record_lead_ms / 1000,
        )
        self.limits = LimitMonitor(
            self.bus, default_limits(config.limits), config.limits.hysteresis_fraction
        )
        self.drift = DriftMonitor(
            self.devices,
            self.reference,
            self.bus,
            interval_s=config.project.drift_check_s,
            limit_frames=config.project.drift_limit_frames,
            auto_rejam=config.project.auto_rejam,
        )
        self.dispatcher = Dispatcher()
        self.sequences = SequenceRunner(self.dispatcher, self.devices, self.bus)
        for spec in [
            *DeviceCommands(self.devices).commands(),
            *self.takes.commands(),
            *self.sequences.commands(),
            CommandSpec("health", NoArgs, self.health, "Limits, tasks, links, timecode."),
        ]:
            self.dispatcher.register(spec)
        for agent in self.devices.values():
            agent.adopters.append(self.takes.adopt_camera)
        self.commands: asyncio.Queue[bytes] = asyncio.Queue()
        self.bus.subscribe(self._event_to_ground)

    def _next_bd_seq(self) -> int:
        self._bd_seq += 1
        return self._bd_seq

    def _event_to_ground(self, event: Event) -> None:
        self.stream.append(ground.EVENT, event.as_dict())

    def _device_updated(self, agent: DeviceAgent) -> None:
        self.limits.check(agent.name, agent.kind, agent.status, agent.stats)
        self.ground.update_state(agent.name, self.snapshot(agent))

    def snapshot(self, agent: DeviceAgent) -> dict[str, Any]:
        snapshot = agent.snapshot()
        if agent.kind == "camera":
            offset = self.drift.offsets_frames.get(agent.name)
            snapshot["timecode_offset_frames"] = None if offset is None else round(offset, 3)
        return snapshot

    def birth(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "schema": ground.SCHEMA_VERSION,
            "started": self.started,
            "frame_rate": self.reference.rate.fps,
            "devices": {name: self.snapshot(agent) for name, agent in self.devices.items()},
            "groups": {g.name: g.cameras for g in self.config.groups},
            "commands": self.dispatcher.names,
            "limits": self.limits.active(),
            "sequence": self.sequences.status_dict(),
            "backlog": self.stream.backlog,
        }

    async def health(self, _: NoArgs) -> dict[str, Any]:
        return {
            "limits": self.limits.active(),
            "tasks": self.supervisor.status(),
            "timecode_offsets_frames": self.drift.offsets_frames,
            "links": {name: agent.stats.as_dict() for name, agent in self.devices.items()},
            "sequence": self.sequences.status_dict(),
        }

    async def _receive_command(self, payload: bytes) -> None:
        await self.commands.put(payload)

    async def _command_worker(self) -> None:
        """Commands run one at a time, in arrival order, so their effects never interleave."""
        beat = self.supervisor.beater("commands")
        while True:
            beat()
            try:
                payload = await asyncio.wait_for(self.commands.get(), COMMAND_IDLE_BEAT_S)
            except TimeoutError:
                continue
            request = _parse_command(payload)
            if isinstance(request, str):
                self.stream.append(
                    ground.RESULT,
                    {"id": None, "status": "rejected", "reason": f"malformed command: {request}"},
                )
                continue
            command_id = request.get("id")
            outcome = await self.dispatcher.execute(request["name"], request.get("args"))
            self.stream.append(
                ground.RESULT, {"id": command_id, "name": request["name"], **outcome.as_dict()}
            )

    async def run(self, stop: asyncio.Event) -> None:
        supervisor = self.supervisor
        supervisor.add("ground-link", self.ground.run)
        supervisor.add("commands", self._command_worker, watchdog_s=self.dispatcher.timeout_s + 10)
        self.drift.beat = supervisor.beater("timecode-drift")
        supervisor.add(
            "timecode-drift", self.drift.run, watchdog_s=3 * self.config.project.drift_check_s + 30
        )
        for name, agent in self.devices.items():
            task = f"device:{name}"
            agent.beat = supervisor.beater(task)
            supervisor.add(task, agent.run, watchdog_s=max(30.0, 5 * agent.config.offline_after_s))
        notifier = Notifier()
        supervisor.on_healthy = notifier.watchdog
        tasks_stop = asyncio.Event()
        runner = asyncio.create_task(supervisor.run(tasks_stop))
        notifier.ready(f"{len(self.devices)} devices configured")
        try:
            await stop.wait()
            notifier.stopping()
            await self.ground.publish_death("daemon shut down")
        finally:
            tasks_stop.set()
            await runner
            self.shotlog.close()


def _parse_command(payload: bytes) -> dict[str, Any] | str:
    """The command object, or why it is not one."""
    try:
        request = json.loads(payload)
    except ValueError as exc:
        return f"not JSON ({exc})"
    if not isinstance(request, dict) or not isinstance(request.get("name"), str):
        return "a command is a JSON object with a string 'name'"
    return request


def run_daemon(config: Config) -> int:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await Daemon(config).run(stop)

    asyncio.run(main())
    return 0
