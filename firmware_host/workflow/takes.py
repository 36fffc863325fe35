"""Record and cut: every camera of a take starts on the same timecode frame, and is logged.

The daemon picks a start frame a little ahead (`lead_s`, longer than the slowest camera's
command round trip), and every camera arms for exactly that frame. Cameras are jammed to the
same reference, so their clips begin on the same frame. If any camera refuses, the ones that
accepted are stopped again: a take starts on every camera asked for, or on none.

Refusals come first: a camera rolling, in ERROR, asleep or offline (read from the cameras,
not from the last poll) refuses the whole take before any camera is armed.

A take goes into the shot log once a camera confirms it rolled (its RECORD_STARTED event or a
polled status showing it recording), not when it is armed: a cut before the start frame
disarms the cameras and cancels the take, which leaves no row (the `take.cancelled` event and
the cut's result are its record). A take is closed when it is cut; whenever a camera is
(re)adopted its own clip list is reconciled with the log, so a crash, a reset or a lost link
never leaves the log wrong for long and never duplicates a clip.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec

from firmware_host.budget.data import DataBudgets
from firmware_host.budget.governor import CameraSetting
from firmware_host.budget.power import PowerManager, recording_load
from firmware_host.commands.dispatcher import CommandFailed, CommandRejected, CommandSpec
from firmware_host.devices.agent import DeviceAgent, DeviceUnavailable
from firmware_host.drivers.camera import CameraDriver
from firmware_host.events import EventBus
from firmware_host.link.errors import LinkError
from firmware_host.storage_guard import StorageFault
from firmware_host.tasks import NotRunning, TaskOwner
from firmware_host.workflow.shotlog import ClipFacts, ShotLog
from firmware_host.workflow.timecode import ReferenceClock
from protocols.catalogue import NackReceived
from protocols.messages.camera import CameraState, ClipInfo
from protocols.messages.common import DeviceEvent, EventCode, NackCode, Severity
from protocols.timecode import format_timecode

log = logging.getLogger(__name__)
SELF_STOPS = frozenset({EventCode.MEDIA_FULL, EventCode.OVER_TEMPERATURE})
ROLLING = frozenset({CameraState.ARMED, CameraState.RECORDING})

Text12 = Annotated[str, msgspec.Meta(min_length=1, max_length=12)]


class RecordArgs(msgspec.Struct, forbid_unknown_fields=True):
    scene: Text12
    take: Annotated[int, msgspec.Meta(ge=1, le=999)]
    roll: Annotated[str, msgspec.Meta(min_length=1, max_length=8)] = "A001"
    group: str | None = None  # a configured camera group
    cameras: list[str] | None = None  # or explicit cameras; default: every camera
    planned_s: Annotated[float, msgspec.Meta(gt=0, le=86400)] | None = None  # must fit media


class CutArgs(msgspec.Struct, forbid_unknown_fields=True):
    group: str | None = None
    cameras: list[str] | None = None


class ShotLogQueryArgs(msgspec.Struct, forbid_unknown_fields=True):
    scene: str | None = None
    take: int | None = None
    camera: str | None = None
    circled: bool | None = None
    since: float | None = None  # unix time
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 50


class TakeRef(msgspec.Struct, forbid_unknown_fields=True):
    take_id: int | None = None
    scene: str | None = None  # with take: the latest take of that number
    take: int | None = None


class CircleArgs(TakeRef, forbid_unknown_fields=True):
    circled: bool = True


class NoteArgs(TakeRef, forbid_unknown_fields=True):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=500)] = ""


@dataclass
class ArmedTake:
    """A take its cameras accepted and wait to start: logged only once one of them rolls."""

    scene: str
    take: int
    roll: str
    start_frame: int
    settings: dict[str, dict[str, Any]]
    clips: dict[str, tuple[int, int]] = field(default_factory=dict)  # camera: clip id, tc in
    unlogged: bool = False  # it rolled and writing it to the shot log failed (reported)


class TakeController:
    def __init__(
        self,
        devices: Mapping[str, DeviceAgent],
        reference: ReferenceClock,
        bus: EventBus,
        shotlog: ShotLog,
        groups: Mapping[str, list[str]],
        *,
        power: PowerManager,
        data: DataBudgets,
        lead_s: float = 0.4,
    ) -> None:
        self.devices = devices
        self.reference = reference
        self.bus = bus
        self.shotlog = shotlog
        self.groups = groups
        self.power = power
        self.data = data
        self.lead_s = lead_s
        self.tasks = TaskOwner("takes")  # reconciliations: they end with run()
        self._armed: dict[str, ArmedTake] = {}  # camera: its take, until the take is logged

    def _cameras(self, group: str | None, names: list[str] | None) -> list[DeviceAgent]:
        if group is not None and names is not None:
            raise CommandRejected("give a group or a list of cameras, not both")
        if group is not None:
            if group not in self.groups:
                raise CommandRejected(f"no camera group {group!r}; groups: {sorted(self.groups)}")
            names = self.groups[group]
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

    # -- record and cut --------------------------------------------------------------------

    async def _check_ready(self, agents: list[DeviceAgent]) -> None:
        """Every camera of the take is online, awake, free of errors and not rolling, as read
        from the cameras now, before any is armed: a take starts on all of them or on none,
        and no camera is sent a start it would refuse."""
        statuses = await asyncio.gather(
            *(a.refresh_status() for a in agents), return_exceptions=True
        )
        rolling: list[str] = []
        problems: list[str] = []
        for agent, status in zip(agents, statuses, strict=True):
            if isinstance(status, DeviceUnavailable):
                problems.append(str(status))
            elif isinstance(status, (LinkError, NackReceived)):
                problems.append(f"{agent.name} did not answer its status poll: {status}")
            elif isinstance(status, BaseException):
                raise status
            elif status.state in ROLLING:
                rolling.append(agent.name)
            elif status.state is CameraState.ERROR:
                problems.append(
                    f"{agent.name} is in ERROR ({status.error.name}): clear it with "
                    "camera.clear_error once its cause is gone"
                )
            elif status.state is CameraState.OFF:
                problems.append(f"{agent.name} is asleep (OFF)")
        if rolling:
            raise CommandRejected(f"a take is rolling on {', '.join(rolling)}: cut it first")
        if problems:
            raise CommandRejected("take not started, no camera armed: " + "; ".join(problems))

    async def record(self, args: RecordArgs) -> dict[str, Any]:
        agents = self._cameras(args.group, args.cameras)
        await self._check_ready(agents)
        try:
            drivers = {a.name: a.camera() for a in agents}
        except DeviceUnavailable as exc:
            raise CommandRejected(str(exc)) from exc
        rolling = {
            a.name: CameraSetting(CameraState.RECORDING, recording_load(a.camera_settings))
            for a in agents
        }
        decision = self.power.admit_all(list(rolling.items()))
        if not decision.allowed:
            raise CommandRejected(decision.reason)
        fit = self.data.media.admit_take(list(drivers), args.planned_s)
        if not fit.allowed:
            raise CommandRejected(fit.reason)
        for warning in fit.warnings:
            self.bus.emit("take.wont_fit", Severity.WARNING, f"take will not fit: {warning}")
        start, _ = self.reference.at(self.reference.wall() + self.lead_s)
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
        for name, setting in rolling.items():
            self.power.committed(name, setting)
        self.data.media.take_started(names, args.planned_s)
        rate = self.reference.rate
        armed = ArmedTake(
            scene=args.scene,
            take=args.take,
            roll=args.roll,
            start_frame=start,
            settings={a.name: a.settings_record() or {} for a in agents if a.camera_settings},
        )
        for name, reply in zip(names, replies, strict=True):
            assert not isinstance(reply, BaseException)
            armed.clips[name] = (reply.clip_id, reply.timecode_in)
            self._armed[name] = armed
            if reply.timecode_in != start:
                self.bus.emit(
                    "take.late_start",
                    Severity.WARNING,
                    f"{name} starts at {format_timecode(reply.timecode_in, rate)}, "
                    f"not {format_timecode(start, rate)}",
                    source=name,
                )
        await self._refresh(agents)  # after registering: a confirmation may come meanwhile
        result = {**self._describe(armed), "state": "armed", "rolls_in_s": self.lead_s}
        self.bus.emit(
            "take.armed",
            Severity.INFO,
            f"scene {args.scene} take {args.take} armed on {', '.join(names)} "
            f"for {result['timecode_in']}",
            **result,
        )
        return result

    @staticmethod
    async def _refresh(agents: list[DeviceAgent]) -> None:
        """Read the cameras just armed or stopped, so what every other command and the ground
        see of them is their new state, not a poll from before (a camera that does not
        answer now is caught up by its next poll)."""
        await asyncio.gather(*(a.refresh_status() for a in agents), return_exceptions=True)

    def _describe(self, armed: ArmedTake) -> dict[str, Any]:
        rate = self.reference.rate
        return {
            "scene": armed.scene,
            "take": armed.take,
            "roll": armed.roll,
            "timecode_in": format_timecode(armed.start_frame, rate),
            "start_frame": armed.start_frame,
            "clips": {
                n: {"clip_id": clip_id, "timecode_in": format_timecode(tc_in, rate)}
                for n, (clip_id, tc_in) in armed.clips.items()
            },
        }

    def _rolled(self, camera: str) -> None:
        """A camera confirmed it is rolling: its take goes into the shot log now, once.

        The cameras of a take were armed for the same frame, so the first confirmation logs
        them all; one that never rolls after all is closed by reconciliation.
        """
        armed = self._armed.get(camera)
        if armed is None:
            return
        try:
            take_id = self.shotlog.take_started(
                scene=armed.scene,
                take=armed.take,
                roll=armed.roll,
                start_frame=armed.start_frame,
                frame_rate=self.reference.rate.fps,
                clips={n: clip_id for n, (clip_id, _) in armed.clips.items()},
                settings=armed.settings,
                timecodes_in={n: tc_in for n, (_, tc_in) in armed.clips.items()},
            )
        except (sqlite3.Error, StorageFault) as exc:
            # Called from the link's receive path and the poll loop: never let the log's
            # storage break either. The take stays armed here, so the next confirmation (the
            # next poll) tries again; the crew hears of it once.
            if not armed.unlogged:
                armed.unlogged = True
                self.bus.emit(
                    "take.unlogged",
                    Severity.CRITICAL,
                    f"scene {armed.scene} take {armed.take} is rolling on "
                    f"{', '.join(armed.clips)} but the shot log cannot be written: {exc}",
                    file=str(self.shotlog.path),
                )
            return
        for name in armed.clips:
            self._armed.pop(name, None)
        described = {"take_id": take_id, **self._describe(armed)}
        self.bus.emit(
            "take.started",
            Severity.INFO,
            f"scene {armed.scene} take {armed.take} rolling on {', '.join(armed.clips)} "
            f"from {described['timecode_in']}",
            **described,
        )

    def on_device_update(self, agent: DeviceAgent) -> None:
        """A polled status showing an armed camera recording its clip confirms the take (the
        RECORD_STARTED event usually says so first; events are hints, polls are the truth)."""
        armed = self._armed.get(agent.name)
        status = agent.status
        if armed is None or agent.kind != "camera" or status is None:
            return
        if status.state is CameraState.RECORDING and status.clip_id == armed.clips[agent.name][0]:
            self._rolled(agent.name)

    async def cut(self, args: CutArgs) -> dict[str, Any]:
        agents = self._cameras(args.group, args.cameras)
        stopped: dict[str, Any] = {}
        cancelled: dict[str, Any] = {}
        problems: dict[str, str] = {}

        async def stop(agent: DeviceAgent) -> None:
            try:
                reply = await agent.camera().record_stop()
            except NackReceived as exc:
                if exc.code is not NackCode.BAD_STATE:  # BAD_STATE: it was not rolling
                    problems[agent.name] = str(exc)
                return
            except (DeviceUnavailable, LinkError) as exc:
                problems[agent.name] = str(exc)
                return
            armed = self._armed.get(agent.name)
            if armed is not None and reply.frames == 0:
                # Cut inside the arm lead: the camera disarmed and never recorded a frame.
                self._armed.pop(agent.name)
                armed.clips.pop(agent.name)
                cancelled[agent.name] = {"clip_id": reply.clip_id, "scene": armed.scene,
                                         "take": armed.take}  # fmt: skip
                return
            self._rolled(agent.name)  # it rolled before its confirmation reached us
            self.shotlog.clip_closed(
                agent.name, reply.clip_id, reply.timecode_out, reply.frames, reply.bytes
            )
            stopped[agent.name] = {
                "clip_id": reply.clip_id,
                "timecode_out": format_timecode(reply.timecode_out, self.reference.rate),
                "frames": reply.frames,
                "bytes": reply.bytes,
            }

        await asyncio.gather(*(stop(a) for a in agents))
        await self._refresh([a for a in agents if a.name in stopped or a.name in cancelled])
        self.data.media.take_ended(sorted(stopped | cancelled))
        if cancelled:
            self.bus.emit(
                "take.cancelled",
                Severity.INFO,
                f"cut before the start frame: take cancelled on {', '.join(sorted(cancelled))}, "
                "nothing recorded or logged",
                cameras=cancelled,
            )
        if problems:
            detail = "; ".join(f"{n}: {e}" for n, e in problems.items())
            raise CommandFailed(f"cut incomplete ({detail}); stopped {sorted(stopped) or 'none'}")
        if not stopped and not cancelled:
            raise CommandRejected(
                f"nothing to cut: no take is rolling on {', '.join(a.name for a in agents)}"
            )
        if stopped:
            self.bus.emit(
                "take.cut",
                Severity.INFO,
                f"cut on {', '.join(sorted(stopped))}",
                clips=stopped,
            )
        return {"clips": stopped, "cancelled": cancelled}

    # -- reconciliation --------------------------------------------------------------------

    def on_camera_event(self, agent: DeviceAgent, event: DeviceEvent) -> None:
        """RECORD_STARTED confirms an armed take. A camera that stopped itself (media full,
        over-temperature) closed its clip with no cut: take its own figures into the log now
        rather than at the next adoption."""
        if agent.kind != "camera":
            return
        if event.code is EventCode.RECORD_STARTED:
            self._rolled(agent.name)
        if event.code not in SELF_STOPS:
            return
        self.data.media.take_ended([agent.name])
        try:
            self.tasks.start(self._reconcile_self_stop(agent), name=f"reconcile:{agent.name}")
        except NotRunning as exc:
            log.warning("%s stopped itself; reconciling at its next adoption (%s)", agent.name, exc)

    async def run(self) -> None:
        """Own the reconciliations a camera's own stop starts."""
        await self.tasks.serve()

    async def _reconcile_self_stop(self, agent: DeviceAgent) -> None:
        try:
            await self.adopt_camera(agent)
        except (DeviceUnavailable, LinkError, NackReceived) as exc:
            log.warning("%s stopped itself; reconciling at its next adoption (%s)", agent.name, exc)

    async def adopt_camera(self, agent: DeviceAgent) -> None:
        """Reconcile the shot log with what the camera itself says it recorded."""
        driver = agent.driver
        if not isinstance(driver, CameraDriver):
            return
        settled = self.shotlog.settled_clip_ids(agent.name)
        status = agent.status
        armed_clip = status.clip_id if status and status.state is CameraState.ARMED else None
        facts = []
        for clip_id in await driver.clip_ids():
            if clip_id in settled:
                continue
            info = await driver.clip_info(clip_id)
            if clip_id == armed_clip:
                self._adopt_armed(agent, info)  # not rolling yet: logged when it rolls
                continue
            facts.append(
                ClipFacts(
                    camera=agent.name,
                    clip_id=info.clip_id,
                    timecode_in=info.timecode_in,
                    timecode_out=info.timecode_out,
                    frames=info.frames,
                    bytes=info.bytes,
                    scene=info.scene,
                    take=info.take,
                    roll=info.roll,
                    closed=info.closed,
                )
            )
        changes = self.shotlog.reconcile(agent.name, facts, self.reference.rate.fps)
        if any(changes.values()):
            self.bus.emit(
                "shotlog.reconciled",
                Severity.WARNING,
                f"{agent.name}: shot log reconciled with the camera's clip list "
                f"({changes['added']} added, {changes['closed']} closed)",
                source=agent.name,
                **changes,
            )

    def _adopt_armed(self, agent: DeviceAgent, info: ClipInfo) -> None:
        """A camera found armed (the daemon restarted, or the link came back, between arming
        and the start frame): watch for it to roll, so its take is logged then."""
        if agent.name in self._armed:
            return
        settings = agent.settings_record()
        armed = ArmedTake(
            scene=info.scene,
            take=info.take,
            roll=info.roll,
            start_frame=info.timecode_in,
            settings={agent.name: settings} if settings else {},
        )
        armed.clips[agent.name] = (info.clip_id, info.timecode_in)
        self._armed[agent.name] = armed

    # -- the log as the crew uses it -------------------------------------------------------

    async def query(self, args: ShotLogQueryArgs) -> dict[str, Any]:
        takes = self.shotlog.query(
            scene=args.scene, take=args.take, camera=args.camera, circled=args.circled,
            since=args.since, limit=args.limit,
        )  # fmt: skip
        return {"takes": takes}

    def _take_id(self, ref: TakeRef) -> int:
        if ref.take_id is not None:
            return ref.take_id
        if ref.scene is None or ref.take is None:
            raise CommandRejected("name the take: take_id, or scene and take")
        take_id = self.shotlog.take_id_of(ref.scene, ref.take)
        if take_id is None:
            raise CommandRejected(f"no take {ref.take} of scene {ref.scene!r} in the shot log")
        return take_id

    async def circle(self, args: CircleArgs) -> dict[str, Any]:
        take_id = self._take_id(args)
        if not self.shotlog.annotate(take_id, circled=args.circled, note=None):
            raise CommandRejected(f"no take {take_id} in the shot log")
        if args.circled:
            (take,) = self.shotlog.query(take_id=take_id, limit=1)
            duration = max((c["duration_s"] or 0.0 for c in take["clips"]), default=0.0)
            self.data.queue_proxy(take_id, duration)
        self.bus.emit(
            "take.circled" if args.circled else "take.uncircled",
            Severity.INFO,
            f"take {take_id} {'circled' if args.circled else 'no longer circled'}",
            take_id=take_id,
        )
        return {"take_id": take_id, "circled": args.circled}

    async def note(self, args: NoteArgs) -> dict[str, Any]:
        take_id = self._take_id(args)
        if not args.text:
            raise CommandRejected("text: a note needs some text")
        if not self.shotlog.annotate(take_id, circled=None, note=args.text):
            raise CommandRejected(f"no take {take_id} in the shot log")
        self.bus.emit("take.noted", Severity.INFO, f"take {take_id}: {args.text}",
                      take_id=take_id, text=args.text)  # fmt: skip
        return {"take_id": take_id, "text": args.text}

    def commands(self) -> list[CommandSpec[Any]]:
        return [
            CommandSpec("record", RecordArgs, self.record,
                        "Roll a take on a camera group, all starting on the same frame."),
            CommandSpec("cut", CutArgs, self.cut, "Stop every rolling camera of the group."),
            CommandSpec("shotlog.query", ShotLogQueryArgs, self.query,
                        "Takes and their clips, newest first."),
            CommandSpec("take.circle", CircleArgs, self.circle, "Circle (or un-circle) a take."),
            CommandSpec("take.note", NoteArgs, self.note, "Add a note to a take."),
        ]  # fmt: skip
