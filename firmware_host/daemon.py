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
from typing import Any

from firmware_host.commands.devices import DeviceCommands
from firmware_host.commands.dispatcher import Dispatcher
from firmware_host.config import Config
from firmware_host.devices.agent import DeviceAgent
from firmware_host.events import Event, EventBus
from firmware_host.groundlink.mqtt import GroundLink
from firmware_host.groundlink.stream import Stream
from firmware_host.supervisor import Supervisor
from firmware_host.workflow.takes import TakeController
from firmware_host.workflow.timecode import ReferenceClock
from protocols import ground
from protocols.timecode import FrameRate

log = logging.getLogger(__name__)


class Daemon:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.node = config.node.name
        self.started = time.time()
        self.bus = EventBus()
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
        self.devices: dict[str, DeviceAgent] = {
            d.name: DeviceAgent(d, self.bus, self.reference, self._device_updated)
            for d in config.devices
        }
        self.dispatcher = Dispatcher()
        self.takes = TakeController(
            self.devices, self.reference, self.bus, lead_s=config.project.record_lead_ms / 1000
        )
        for spec in [*DeviceCommands(self.devices).commands(), *self.takes.commands()]:
            self.dispatcher.register(spec)
        self.commands: asyncio.Queue[bytes] = asyncio.Queue()
        self.supervisor = Supervisor(self.bus)
        self.bus.subscribe(self._event_to_ground)

    def _next_bd_seq(self) -> int:
        self._bd_seq += 1
        return self._bd_seq

    def _event_to_ground(self, event: Event) -> None:
        self.stream.append(ground.EVENT, event.as_dict())

    def _device_updated(self, agent: DeviceAgent) -> None:
        self.ground.update_state(agent.name, agent.snapshot())

    def birth(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "schema": ground.SCHEMA_VERSION,
            "started": self.started,
            "frame_rate": self.reference.rate.fps,
            "devices": {name: agent.snapshot() for name, agent in self.devices.items()},
            "commands": self.dispatcher.names,
            "backlog": self.stream.backlog,
        }

    async def _receive_command(self, payload: bytes) -> None:
        await self.commands.put(payload)

    async def _command_worker(self) -> None:
        """Commands run one at a time, in arrival order, so their effects never interleave."""
        while True:
            payload = await self.commands.get()
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
        supervisor.add("commands", self._command_worker)
        for name, agent in self.devices.items():
            supervisor.add(f"device:{name}", agent.run)
        tasks_stop = asyncio.Event()
        runner = asyncio.create_task(supervisor.run(tasks_stop))
        try:
            await stop.wait()
            await self.ground.publish_death("daemon shut down")
        finally:
            tasks_stop.set()
            await runner


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
