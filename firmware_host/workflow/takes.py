"""Record and cut: every camera of a take starts on the same timecode frame.

The daemon picks a start frame a little ahead (`lead_s`, longer than the slowest camera's
command round trip), and every camera arms for exactly that frame. Cameras are jammed to the
same reference, so their clips begin on the same frame. If any camera refuses, the ones that
accepted are stopped again: a take starts on every camera asked for, or on none.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

from firmware_host.commands.dispatcher import CommandFailed, CommandRejected, CommandSpec
from firmware_host.devices.agent import DeviceAgent, DeviceUnavailable
from firmware_host.events import EventBus
from firmware_host.link.errors import LinkError
from firmware_host.workflow.timecode import ReferenceClock
from protocols.catalogue import NackReceived
from protocols.messages.common import NackCode, Severity
from protocols.timecode import format_timecode


class RecordArgs(msgspec.Struct, forbid_unknown_fields=True):
    scene: Annotated[str, msgspec.Meta(min_length=1, max_length=12)]
    take: Annotated[int, msgspec.Meta(ge=1, le=999)]
    roll: Annotated[str, msgspec.Meta(min_length=1, max_length=8)] = "A001"
    cameras: list[str] | None = None  # default: every camera


class CutArgs(msgspec.Struct, forbid_unknown_fields=True):
    cameras: list[str] | None = None


class TakeController:
    def __init__(
        self,
        devices: Mapping[str, DeviceAgent],
        reference: ReferenceClock,
        bus: EventBus,
        *,
        lead_s: float = 0.4,
    ) -> None:
        self.devices = devices
        self.reference = reference
        self.bus = bus
        self.lead_s = lead_s

    def _cameras(self, names: list[str] | None) -> list[DeviceAgent]:
        if names is None:
            agents = [a for a in self.devices.values() if a.kind == "camera"]
            if not agents:
                raise CommandRejected("no cameras are configured")
            return agents
        chosen = []
        for name in names:
            agent = self.devices.get(name)
            if agent is None or agent.kind != "camera":
                raise CommandRejected(f"{name!r} is not a configured camera")
            chosen.append(agent)
        return chosen

    async def record(self, args: RecordArgs) -> dict[str, Any]:
        agents = self._cameras(args.cameras)
        try:
            drivers = {a.name: a.camera() for a in agents}
        except DeviceUnavailable as exc:
            raise CommandRejected(str(exc)) from exc
        start, _ = self.reference.at(time.time() + self.lead_s)
        names = list(drivers)
        replies = await asyncio.gather(
            *(d.record_start(args.scene, args.take, args.roll, start) for d in drivers.values()),
            return_exceptions=True,
        )
        failed = {n: r for n, r in zip(names, replies, strict=True) if isinstance(r, BaseException)}
        if failed:
            started = [n for n in names if n not in failed]
            await asyncio.gather(
                *(drivers[n].record_stop() for n in started), return_exceptions=True
            )
            reasons = "; ".join(f"{n}: {e}" for n, e in failed.items())
            raise CommandFailed(f"take not started ({reasons}); stopped {started or 'none'}")
        rate = self.reference.rate
        clips = {}
        for name, reply in zip(names, replies, strict=True):
            assert not isinstance(reply, BaseException)
            clips[name] = reply.clip_id
            if reply.timecode_in != start:
                self.bus.emit(
                    "take.late_start",
                    Severity.WARNING,
                    f"{name} started at {format_timecode(reply.timecode_in, rate)}, "
                    f"not {format_timecode(start, rate)}",
                    source=name,
                )
        result: dict[str, Any] = {
            "scene": args.scene,
            "take": args.take,
            "roll": args.roll,
            "timecode_in": format_timecode(start, rate),
            "start_frame": start,
            "clips": clips,
        }
        self.bus.emit(
            "take.started",
            Severity.INFO,
            f"scene {args.scene} take {args.take} rolling on {', '.join(names)} "
            f"from {result['timecode_in']}",
            **result,
        )
        return result

    async def cut(self, args: CutArgs) -> dict[str, Any]:
        agents = self._cameras(args.cameras)
        stopped: dict[str, Any] = {}
        problems: dict[str, str] = {}

        async def stop(agent: DeviceAgent) -> None:
            try:
                reply = await agent.camera().record_stop()
            except NackReceived as exc:
                if exc.code is NackCode.BAD_STATE:
                    return  # was not rolling
                problems[agent.name] = str(exc)
                return
            except (DeviceUnavailable, LinkError) as exc:
                problems[agent.name] = str(exc)
                return
            stopped[agent.name] = {
                "clip_id": reply.clip_id,
                "timecode_out": format_timecode(reply.timecode_out, self.reference.rate),
                "frames": reply.frames,
                "bytes": reply.bytes,
            }

        await asyncio.gather(*(stop(a) for a in agents))
        if problems:
            detail = "; ".join(f"{n}: {e}" for n, e in problems.items())
            raise CommandFailed(f"cut incomplete ({detail}); stopped {sorted(stopped) or 'none'}")
        self.bus.emit(
            "take.cut", Severity.INFO, f"cut on {', '.join(stopped) or 'no rolling camera'}",
            clips=stopped,
        )  # fmt: skip
        return {"clips": stopped}

    def commands(self) -> list[CommandSpec[Any]]:
        return [
            CommandSpec("record", RecordArgs, self.record, "Roll a take on a camera group."),
            CommandSpec("cut", CutArgs, self.cut, "Stop every rolling camera of the group."),
        ]
