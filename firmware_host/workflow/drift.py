"""Timecode drift monitoring: every camera compared with the reference, all day long.

Free-running camera clocks drift by tens of ppm, about a frame every 10 to 20 minutes. The
monitor reads each online camera's clock at a fixed interval; past `limit_frames` it raises
one `timecode.drift` event (not one per reading), re-jams the camera at once if it is not
rolling (never mid-take: that would break the clip's timecode), and clears once the camera
is back under half the limit. Every offset it reports carries its uncertainty and the instant
it was read (see workflow/timecode.py), so it can be checked against any other clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from firmware_host.devices.agent import DeviceAgent
from firmware_host.events import EventBus
from firmware_host.link.errors import LinkError
from firmware_host.workflow.timecode import ClockReading, ReferenceClock
from protocols.catalogue import NackReceived
from protocols.messages.camera import CameraState
from protocols.messages.common import Severity


class DriftMonitor:
    def __init__(
        self,
        devices: Mapping[str, DeviceAgent],
        reference: ReferenceClock,
        bus: EventBus,
        *,
        interval_s: float,
        limit_frames: float,
        auto_rejam: bool,
        beat: Callable[[], None] = lambda: None,
    ) -> None:
        self.devices = devices
        self.reference = reference
        self.bus = bus
        self.interval_s = interval_s
        self.limit_frames = limit_frames
        self.auto_rejam = auto_rejam
        self.beat = beat
        self.offsets_frames: dict[str, float] = {}
        self._drifted: set[str] = set()

    async def run(self) -> None:
        while True:
            self.beat()
            await asyncio.sleep(self.interval_s)
            for agent in list(self.devices.values()):
                if agent.kind == "camera" and agent.online:
                    try:
                        await self.check(agent)
                    except (LinkError, NackReceived) as exc:
                        self.bus.emit(
                            "timecode.unreadable",
                            Severity.DIAGNOSTIC,
                            f"{agent.name}: timecode not read: {exc}",
                            source=agent.name,
                        )

    async def check(self, agent: DeviceAgent) -> float:
        """Read one camera's offset in frames and act on it."""
        reading = await agent.read_clock()
        frames, uncertainty = reading.in_frames(self.reference.rate)
        self.offsets_frames[agent.name] = frames
        name = agent.name
        if abs(frames) > self.limit_frames and name not in self._drifted:
            self._drifted.add(name)
            self.bus.emit(
                "timecode.drift",
                Severity.WARNING,
                f"{name} timecode is {frames:+.2f} +- {uncertainty:.2f} frames off the "
                f"reference (limit {self.limit_frames:g})",
                source=name,
                **self._figures(reading),
            )
        if name in self._drifted and self.auto_rejam and not self._rolling(agent):
            reading = await agent.jam()
            frames, uncertainty = reading.in_frames(self.reference.rate)
            self.offsets_frames[name] = frames
            self.bus.emit(
                "timecode.rejammed",
                Severity.INFO,
                f"{name} re-jammed; now {frames:+.3f} +- {uncertainty:.3f} frames off",
                source=name,
                **self._figures(reading),
            )
        if name in self._drifted and abs(frames) < self.limit_frames / 2:
            self._drifted.discard(name)
            self.bus.emit(
                "timecode.drift_cleared",
                Severity.INFO,
                f"{name} timecode back within {self.limit_frames / 2:g} frames",
                source=name,
            )
        return frames

    def _figures(self, reading: ClockReading) -> dict[str, float]:
        """An offset as events carry it: with its uncertainty and the instant it was read, so
        anyone can check it against another clock."""
        frames, uncertainty = reading.in_frames(self.reference.rate)
        return {
            "offset_frames": round(frames, 4),
            "uncertainty_frames": round(uncertainty, 4),
            "measured_at": round(reading.at, 6),
        }

    @staticmethod
    def _rolling(agent: DeviceAgent) -> bool:
        status = agent.status
        return status is not None and status.state in (CameraState.ARMED, CameraState.RECORDING)
