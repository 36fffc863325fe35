"""The power budget at run time: the governor wired to the devices, the cap and the ground.

Device status and PDU channel readings keep the governor's view current. Every command that
raises draw asks `admit` before a byte goes to a device. A loop checks the total against the
cap every `check_interval_s` (and at once after any change): over the cap it sheds by the
governor's plan, and reports if the draw is not back under the cap within `shed_deadline_s`.
Under the cap, shed lights come back one step every `restore_interval_s`, the highest
priority first, once the previous step has been measured.
The cap follows the ground's timeline (planned cuts are applied `cap_lead_s` early, so the
draw is already down when the station cuts) and `power.cap.set` (see cap_plan.py). One hazard
rule covers every command that changes either: whatever would put a higher cap in force at
any moment, now or later in the timeline, than it would otherwise be must be confirmed.
Power-ups through the PDU are staggered so inrush currents never sum past the cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import msgspec

from firmware_host.budget.cap_plan import CapInForce, first_raise, in_force
from firmware_host.budget.governor import (
    CameraSetting,
    Decision,
    FixedSetting,
    LightSetting,
    Load,
    PowerGovernor,
    Setting,
    ShedAction,
)
from firmware_host.budget.ledger import BudgetLedger
from firmware_host.budget.models import CameraModel, LightModel, RecordingLoad
from firmware_host.commands.dispatcher import CommandFailed, CommandRejected, CommandSpec
from firmware_host.config import CapChange, Config, DeviceConfig, draw_model
from firmware_host.devices.agent import DeviceAgent, DeviceUnavailable
from firmware_host.events import EventBus
from firmware_host.link.errors import LinkError
from firmware_host.tasks import NotRunning, TaskOwner
from protocols.catalogue import NackReceived
from protocols.messages.camera import CameraSettings, CameraState
from protocols.messages.common import Severity

log = logging.getLogger(__name__)

DISABLE_SHEDDING_ENV = "CUPOLA_TEST_DISABLE_SHEDDING"
DEFAULT_PRIORITY = {"light": 20, "camera": 100, "pdu": 1000}
INRUSH_MARGIN_S = 0.2


def recording_load(settings: CameraSettings | None) -> RecordingLoad:
    if settings is None:
        return RecordingLoad()
    return RecordingLoad(
        settings.width * settings.height * settings.rate.fps, settings.bitrate_kbps
    )


class CapArgs(msgspec.Struct, forbid_unknown_fields=True):
    cap_w: Annotated[float, msgspec.Meta(gt=0, le=100_000)]
    reason: str = "ground request"


class TimelineArgs(msgspec.Struct, forbid_unknown_fields=True):
    at: float  # unix time
    cap_w: Annotated[float, msgspec.Meta(gt=0, le=100_000)]
    until: float | None = None
    reason: str = "planned cap change"


class DevicePowerArgs(msgspec.Struct, forbid_unknown_fields=True):
    device: str
    on: bool


class NoArgs(msgspec.Struct, forbid_unknown_fields=True):
    pass


class PowerManager:
    def __init__(
        self,
        config: Config,
        devices: Mapping[str, DeviceAgent],
        bus: EventBus,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        ledger: BudgetLedger | None = None,
    ) -> None:
        power = config.power
        self.config = power
        self.devices = devices
        self.device_configs = {d.name: d for d in config.devices}
        self.bus = bus
        self.clock = clock
        self.wall = wall
        self.base_cap_w = power.cap_w
        self.base_reason = "configuration"
        self.governor = PowerGovernor(
            power.cap_w,
            power.reserve_pct / 100,
            clock=clock,
            measurement_max_age_s=power.measurement_max_age_s,
            stop_cameras=power.stop_cameras_when_shedding,
        )
        self.channels: dict[int, list[str]] = {}
        for device in config.devices:
            self.governor.add(self._load(device))
            if device.pdu_channel is not None:
                self.channels.setdefault(device.pdu_channel, []).append(device.name)
        self.timeline: list[CapChange] = sorted(power.timeline, key=lambda c: c.at)
        self.over_since: float | None = None
        self.overdue_reported = False
        self.reactions: list[dict[str, float]] = []  # cap cuts: until the PDU measured under
        self._cut_at: float | None = None
        self.pdu_total_w: float | None = None  # the PDU's own total, when there is a PDU
        self.pdu_at = 0.0
        self._in_flight: set[str] = set()
        self._next_restore = 0.0
        self._wake = asyncio.Event()
        self._sequencing = asyncio.Lock()
        self.tasks = TaskOwner("power")  # power-up sequences: they end with run()
        self.ledger = ledger
        # Test-only: lets the bench prove it catches a daemon that does not shed. Never set
        # it on a flight system; the daemon says so loudly at start-up.
        self.shedding = os.environ.get(DISABLE_SHEDDING_ENV) != "1"
        if not self.shedding:
            log.critical("%s=1: load shedding is DISABLED (bench test only)", DISABLE_SHEDDING_ENV)
        self._config_key = msgspec.json.encode(power).decode()
        self._restore()

    def _load(self, device: DeviceConfig) -> Load:
        model = draw_model(device)
        setting: Setting
        if isinstance(model, LightModel):
            setting = LightSetting(False, 0)
        elif isinstance(model, CameraModel):
            setting = CameraSetting(CameraState.STANDBY)
        else:
            setting = FixedSetting()
        return Load(
            device.name,
            device.kind,
            model,
            setting,
            priority=device.priority
            if device.priority is not None
            else DEFAULT_PRIORITY[device.kind],
            floor_permille=round(device.shed_floor_pct * 10),
        )

    # -- what the devices say --------------------------------------------------------------

    def on_device_update(self, agent: DeviceAgent) -> None:
        """Take in a poll; wake the enforcer only for what could change its decision (a
        setting, a measured draw that moved, a reading near or over the cap, a cut or a shed
        in progress), not for every poll: the periodic check covers the rest."""
        status = agent.status
        if status is None or agent.name not in self.governor.loads:
            return
        matters = False
        if agent.kind == "light":
            setting = LightSetting(status.on, status.target_intensity_permille)
            matters = self.governor.observe(agent.name, setting)
        elif agent.kind == "camera":
            load = recording_load(agent.camera_settings)
            matters = self.governor.observe(agent.name, CameraSetting(status.state, load))
        elif agent.kind == "pdu":
            # The PDU is polled one request at a time: this reading was requested after the
            # previous one arrived, and may predate anything that changed since.
            requested_at = self.pdu_at
            self.pdu_total_w = status.total_power_mw / 1000
            self.pdu_at = self.clock()
            for channel in status.channels:
                names = self.channels.get(channel.channel, [])
                if len(names) == 1:  # a shared channel cannot say who drew what
                    moved = self.governor.measure(names[0], channel.power_mw / 1000, requested_at)
                    matters = matters or moved
                elif not channel.on:
                    for name in names:
                        moved = self.governor.measure(name, 0.0, requested_at)
                        matters = matters or moved
            governor = self.governor
            near_cap = self.pdu_total_w > governor.cap_w - governor.reserve_w
            busy = self._cut_at is not None or self.over_since is not None or governor.wanted
            matters = matters or near_cap or bool(busy)
        if matters:
            self._wake.set()

    # -- admission -------------------------------------------------------------------------

    def admit(self, name: str, setting: Setting, *, best_effort: bool = False) -> Decision:
        if self.over_since is not None and name not in self._in_flight:
            current, _ = self.governor.draw(name)
            if self.governor.loads[name].model_w(setting) > current:
                snap = self.governor.snapshot()
                return Decision(
                    False, self.governor.loads[name].setting, 0.0, current, 0.0,
                    f"shedding in progress: {snap.total_w:.0f} W against a "
                    f"{self.governor.cap_w:.0f} W cap; nothing may draw more until it is under",
                    snap.source,
                )  # fmt: skip
        return self.governor.admit(name, setting, best_effort=best_effort)

    def admit_all(self, changes: list[tuple[str, Setting]]) -> Decision:
        if self.over_since is not None:
            snap = self.governor.snapshot()
            return Decision(
                False, FixedSetting(), 0.0, 0.0, 0.0,
                f"shedding in progress: {snap.total_w:.0f} W against a "
                f"{self.governor.cap_w:.0f} W cap; nothing may draw more until it is under",
                snap.source,
            )  # fmt: skip
        return self.governor.admit_all(changes)

    def committed(self, name: str, setting: Setting) -> None:
        """The device accepted a setting that went through `admit`."""
        self.governor.commanded(name)
        self.governor.observe(name, setting)
        self._wake.set()

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        async with self.tasks:
            while True:
                self._apply_timeline()
                await self.enforce()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.config.check_interval_s)

    async def enforce(self) -> None:
        snap = self.governor.snapshot()
        cap = self.governor.cap_w
        now = self.clock()
        self._check_cut_met(cap, now)
        if snap.total_w <= cap:
            if self.over_since is not None:
                elapsed = now - self.over_since
                self.bus.emit(
                    "power.within_cap", Severity.INFO,
                    f"draw {snap.total_w:.0f} W is under the {cap:.0f} W cap again after "
                    f"{elapsed:.2f} s ({snap.source})",
                    total_w=round(snap.total_w, 1), cap_w=cap, elapsed_s=round(elapsed, 3),
                )  # fmt: skip
            self.over_since = None
            self.overdue_reported = False
            if self.shedding:
                await self._restore_step(now)
            return
        if self.over_since is None:
            self.over_since = now
            self.bus.emit(
                "power.over_cap", Severity.WARNING,
                f"draw {snap.total_w:.0f} W is over the {cap:.0f} W cap ({snap.source}); shedding",
                total_w=round(snap.total_w, 1), cap_w=cap,
            )  # fmt: skip
        if now - self.over_since > self.config.shed_deadline_s and not self.overdue_reported:
            self.overdue_reported = True
            self.bus.emit(
                "power.shed_overdue", Severity.CRITICAL,
                f"still {snap.total_w:.0f} W against a {cap:.0f} W cap after "
                f"{now - self.over_since:.1f} s: shedding did not bring it down in time",
                total_w=round(snap.total_w, 1), cap_w=cap,
            )  # fmt: skip
        if not self.shedding:
            return
        actions = [a for a in self.governor.shed_plan() if a.load not in self._in_flight]
        errors = await asyncio.gather(*(self._carry_out(action) for action in actions))
        done = [error is None for error in errors]
        for action, error in zip(actions, errors, strict=True):
            if error is None:
                self.governor.shed(action)
            else:
                self.bus.emit(
                    "power.shed_failed", Severity.CRITICAL,
                    f"could not {action.reason}: {error}", source=action.load,
                )  # fmt: skip
        # Sent together for speed; reported in the plan's priority order, not in the order
        # the devices happened to answer, so the ground reads the log as the policy acted.
        for action in (a for a, ok in zip(actions, done, strict=True) if ok):
            self.bus.emit(
                "power.shed", Severity.WARNING,
                f"{action.reason}: saves about {action.saving_w:.0f} W "
                f"(cap {self.governor.cap_w:.0f} W)",
                source=action.load, saving_w=round(action.saving_w, 1),
                cap_w=self.governor.cap_w,
            )  # fmt: skip

    def _check_cut_met(self, cap: float, now: float) -> None:
        """After a cap cut: the first PDU reading under the new cap, taken after the cut."""
        cut = self._cut_at
        if cut is None:
            return
        has_pdu = any(a.kind == "pdu" for a in self.devices.values())
        if has_pdu and (self.pdu_total_w is None or self.pdu_at <= cut or self.pdu_total_w > cap):
            return
        seconds = (self.pdu_at if has_pdu else now) - cut
        self._cut_at = None
        self.reactions.append({"cap_w": cap, "seconds": seconds})
        basis = f"measured by the PDU at {self.pdu_total_w:.0f} W" if has_pdu else "modelled"
        self.bus.emit(
            "power.cap_met", Severity.INFO,
            f"under the {cap:.0f} W cap {seconds:.3f} s after the cut ({basis})",
            cap_w=cap, seconds=round(seconds, 4), measured=has_pdu,
        )  # fmt: skip

    async def _restore_step(self, now: float) -> None:
        """Give a shed light back one step, if the last step has settled and there is room."""
        if self._in_flight or now < self._next_restore or not self._settled():
            return
        action = self.governor.restore_step()
        if action is None:
            return
        self._next_restore = now + self.config.restore_interval_s
        issued_at = self.wall()  # steps are paced by when they are sent, not answered
        error = await self._carry_out(action)
        if error is not None:
            self.governor.commanded(action.load)  # not retried: the crew decides
            self.bus.emit(
                "power.restore_failed", Severity.WARNING,
                f"could not {action.reason}: {error}; it stays as it is until set by command",
                source=action.load,
            )  # fmt: skip
        else:
            self.governor.restored(action)
            self.bus.emit(
                "power.restored", Severity.INFO,
                f"{action.reason}: draws about {-action.saving_w:.0f} W more "
                f"(cap {self.governor.cap_w:.0f} W)",
                source=action.load, cost_w=round(-action.saving_w, 1),
                cap_w=self.governor.cap_w, issued_at=round(issued_at, 6),
            )  # fmt: skip

    def _settled(self) -> bool:
        """With a PDU, every load it measures has been measured since it last changed."""
        metered = [n for names in self.channels.values() if len(names) == 1 for n in names]
        if self.pdu_total_w is None:
            return True
        return all(self.governor.draw(name)[1] for name in metered)

    async def _carry_out(self, action: ShedAction) -> str | None:
        """Carry out one action; None, or why the device did not."""
        agent = self.devices[action.load]
        self._in_flight.add(action.load)
        try:
            setting = action.setting
            if isinstance(setting, LightSetting):
                light = agent.light()
                if setting.on:
                    status = agent.status
                    cct = status.target_cct_k if status is not None else 5600
                    if status is not None and not status.on:
                        await light.set_power(True)
                    await light.set_level(setting.permille, cct, 0)
                else:
                    await light.set_power(False)
            elif isinstance(setting, CameraSetting):
                camera = agent.camera()
                if setting.state is CameraState.STANDBY:
                    await camera.record_stop()
                else:
                    await camera.set_awake(False)
        except (DeviceUnavailable, LinkError, NackReceived) as exc:
            return str(exc)
        finally:
            self._in_flight.discard(action.load)
        return None

    # -- the cap ---------------------------------------------------------------------------

    def _restore(self) -> None:
        """Take back the cap and timeline the ground left, unless `[power]` was edited since."""
        saved = self.ledger.get("power") if self.ledger else None
        if not saved or saved["config"] != self._config_key:
            self._save()
            return
        self.base_cap_w = saved["base_cap_w"]
        self.timeline = msgspec.convert(saved["timeline"], list[CapChange])
        if saved["cap_w"] != self.governor.cap_w:
            self.set_cap(saved["cap_w"], f"restored after a restart ({saved['reason']})")

    def _save(self, reason: str = "configuration") -> None:
        if self.ledger is None:
            return
        self.ledger.put("power", {
            "config": self._config_key, "base_cap_w": self.base_cap_w,
            "cap_w": self.governor.cap_w, "reason": reason,
            "timeline": msgspec.to_builtins(self.timeline),
        })  # fmt: skip

    def set_cap(self, cap_w: float, reason: str) -> None:
        old = self.governor.cap_w
        self.governor.set_cap(cap_w)
        self._save(reason)
        if cap_w < old:
            self._cut_at = self.clock()
        self.bus.emit(
            "power.cap_changed", Severity.WARNING if cap_w < old else Severity.INFO,
            f"power cap {old:.0f} W -> {cap_w:.0f} W: {reason}",
            old_cap_w=old, cap_w=cap_w, reason=reason,
        )  # fmt: skip
        self._wake.set()

    def _base(self) -> CapInForce:
        return CapInForce(self.base_cap_w, self.base_reason)

    def _apply_timeline(self) -> None:
        """Put the cap `cap_plan.in_force` names in force; fold what is over into the base."""
        now = self.wall()
        started = [c for c in self.timeline if c.until is None and c.at.timestamp() <= now]
        ended = [c for c in self.timeline if c.until is not None and c.until.timestamp() <= now]
        if started:  # a lasting change becomes the base, overriding all that started before
            last = max(started, key=lambda c: c.at)
            self.base_cap_w, self.base_reason = last.cap_w, last.reason
            self.timeline = [c for c in self.timeline if c.at > last.at]
        self.timeline = [c for c in self.timeline if c not in ended]
        cap = in_force(self._base(), self.timeline, now, self.config.cap_lead_s)
        if started or ended:
            self._save(cap.reason)
        if cap.cap_w != self.governor.cap_w:
            over = [c.reason for c in ended if c.cap_w == self.governor.cap_w]
            reason = f"end of: {over[-1]}" if over and cap == self._base() else cap.reason
            self.set_cap(cap.cap_w, reason)

    def raises_cap(self, base: CapInForce, timeline: list[CapChange]) -> str | None:
        """Why making `base` and `timeline` the plan would raise the cap, or None."""
        now = self.wall()
        before = (self._base(), self.timeline)
        found = first_raise(before, (base, timeline), now, self.config.cap_lead_s)
        if found is None:
            return None
        t, old, new = found
        when = "now" if t <= now else f"in {t - now:.0f} s"
        return f"raises the cap in force {when} from {old:.0f} W to {new:.0f} W"

    # -- powering devices up ---------------------------------------------------------------

    async def power_device(self, name: str, on: bool) -> dict[str, Any]:
        """Switch a device's PDU channel; switching on waits for room for its inrush."""
        config = self.device_configs.get(name)
        if config is None or config.pdu_channel is None:
            raise CommandRejected(f"{name!r} is not fed by a PDU channel this daemon switches")
        pdu = next((a for a in self.devices.values() if a.kind == "pdu"), None)
        if pdu is None:
            raise CommandRejected("no PDU is configured")
        load = self.governor.loads[name]
        model = load.model
        inrush = getattr(model, "inrush_w", 0.0)
        async with self._sequencing:  # one power-up at a time: inrush currents never add up
            if on:
                free = self.governor.free_w() + self.governor.draw(name)[0]
                if inrush > free:
                    raise CommandRejected(
                        f"powering {name} up needs {inrush:.0f} W of inrush; {free:.0f} W of the "
                        f"{self.governor.cap_w:.0f} W cap is free"
                    )
            try:
                channel = await pdu.pdu().switch(config.pdu_channel, on)
            except DeviceUnavailable as exc:
                raise CommandRejected(str(exc)) from exc
            except (LinkError, NackReceived) as exc:
                raise CommandFailed(f"PDU channel {config.pdu_channel}: {exc}") from exc
            if on:
                await asyncio.sleep(getattr(model, "inrush_s", 0.0) + INRUSH_MARGIN_S)
        self.bus.emit(
            "power.device_switched", Severity.INFO,
            f"{name} {'powered up' if on else 'powered down'} (PDU channel {channel.channel})",
            source=name,
        )  # fmt: skip
        return {"device": name, "on": channel.on, "channel": channel.channel}

    async def adopt_pdu(self, agent: DeviceAgent) -> None:
        """When the PDU comes online, power up what it feeds, one device at a time."""
        if agent.kind != "pdu" or agent.status is None:
            return
        off = {ch.channel for ch in agent.status.channels if not ch.on and not ch.tripped}
        order = sorted(
            (name for ch in sorted(off) for name in self.channels.get(ch, [])),
            key=lambda n: -self.governor.loads[n].priority,  # cameras first: they boot longest
        )
        if not order:
            return
        try:
            self.tasks.start(self._power_up(order), name="power-up")
        except NotRunning as exc:
            self.bus.emit(
                "power.startup_held", Severity.WARNING,
                f"{', '.join(order)} not powered up: {exc}", devices=order,
            )  # fmt: skip

    async def _power_up(self, names: list[str]) -> None:
        for name in names:
            try:
                await self.power_device(name, True)
            except (CommandRejected, CommandFailed) as exc:
                self.bus.emit(
                    "power.startup_held", Severity.WARNING,
                    f"{name} not powered up: {exc}", source=name,
                )  # fmt: skip

    # -- commands --------------------------------------------------------------------------

    def _after_cap_set(self, args: CapArgs) -> tuple[CapInForce, list[CapChange]]:
        """A cap set now replaces the base and every change already started."""
        now = self.wall()
        later = [c for c in self.timeline if c.at.timestamp() > now]
        return CapInForce(args.cap_w, args.reason), later

    def _after_timeline_add(self, args: TimelineArgs) -> tuple[CapInForce, list[CapChange]]:
        if args.until is not None and args.until <= args.at:
            raise CommandRejected(f"until ({args.until}) must be after at ({args.at})")
        try:
            at = datetime.datetime.fromtimestamp(args.at, datetime.UTC)
            until = None
            if args.until is not None:
                until = datetime.datetime.fromtimestamp(args.until, datetime.UTC)
        except (OverflowError, ValueError, OSError) as exc:
            raise CommandRejected(f"at/until is not a time this node can plan for: {exc}") from exc
        change = CapChange(at=at, cap_w=args.cap_w, until=until, reason=args.reason)
        return self._base(), sorted([*self.timeline, change], key=lambda c: c.at)

    def _adopt(self, plan: tuple[CapInForce, list[CapChange]], reason: str) -> None:
        base, self.timeline = plan
        self.base_cap_w, self.base_reason = base.cap_w, base.reason
        self._save(reason)
        self._apply_timeline()
        self._wake.set()

    async def cap_command(self, args: CapArgs) -> dict[str, Any]:
        old = self.governor.cap_w
        self._adopt(self._after_cap_set(args), args.reason)
        return {"old_cap_w": old, "cap_w": self.governor.cap_w}

    async def timeline_add(self, args: TimelineArgs) -> dict[str, Any]:
        self._adopt(self._after_timeline_add(args), args.reason)
        return {"planned": len(self.timeline)}

    async def timeline_clear(self, _: NoArgs) -> dict[str, Any]:
        dropped = len(self.timeline)
        self._adopt((self._base(), []), "timeline cleared")
        return {"dropped": dropped}

    async def device_power(self, args: DevicePowerArgs) -> dict[str, Any]:
        return await self.power_device(args.device, args.on)

    def status(self) -> dict[str, Any]:
        snap = self.governor.snapshot()
        loads = {}
        for name, load in self.governor.loads.items():
            watts, measured = self.governor.draw(name)
            loads[name] = {"w": round(watts, 1), "measured": measured, "priority": load.priority}
        return {
            "cap_w": self.governor.cap_w,
            "base_cap_w": self.base_cap_w,
            "reserve_w": round(self.governor.reserve_w, 1),
            "draw_w": round(snap.total_w, 1),
            "source": snap.source,
            "free_w": round(self.governor.free_w(), 1),
            "shedding": self.over_since is not None,
            "loads": loads,
            "timeline": [
                {
                    "at": c.at.timestamp(),
                    "cap_w": c.cap_w,
                    "until": c.until.timestamp() if c.until else None,
                    "reason": c.reason,
                }
                for c in self.timeline
            ],
        }

    def next_change(self) -> dict[str, Any] | None:
        """The cap's next planned change (a cut starting, or one ending), for the ground."""
        now = self.wall()
        upcoming = []
        for c in self.timeline:
            if c.at.timestamp() > now:
                upcoming.append((c.at.timestamp(), c.cap_w, c.reason))
            elif c.until is not None and c.until.timestamp() > now:
                upcoming.append((c.until.timestamp(), self.base_cap_w, f"end of: {c.reason}"))
        if not upcoming:
            return None
        at, cap_w, reason = min(upcoming)
        return {"at": at, "cap_w": cap_w, "reason": reason}

    def _hazard(
        self, kind: type[msgspec.Struct], after: Callable[[Any], tuple[CapInForce, list[CapChange]]]
    ) -> Callable[[dict[str, Any]], bool]:
        """The one hazard rule, for a command whose arguments `after` turns into a plan."""

        def hazardous(args: dict[str, Any]) -> bool:
            try:
                plan = after(msgspec.convert(args, kind))
            except (msgspec.ValidationError, CommandRejected):
                return False  # the handler refuses these arguments with the reason
            return self.raises_cap(*plan) is not None

        return hazardous

    def commands(self) -> list[CommandSpec[Any]]:
        hazard = self._hazard
        return [
            CommandSpec("power.cap.set", CapArgs, self.cap_command,
                        "Set the power cap now, replacing any planned change already started; "
                        "hazardous if it raises the cap now or later.",
                        hazardous=hazard(CapArgs, self._after_cap_set)),
            CommandSpec("power.timeline.add", TimelineArgs, self.timeline_add,
                        "Plan a cap change (a station power-down, a docking); hazardous if it "
                        "raises the cap now or later.",
                        hazardous=hazard(TimelineArgs, self._after_timeline_add)),
            CommandSpec("power.timeline.clear", NoArgs, self.timeline_clear,
                        "Forget every planned cap change; hazardous if that raises the cap.",
                        hazardous=hazard(NoArgs, lambda _: (self._base(), []))),
            CommandSpec("device.power", DevicePowerArgs, self.device_power,
                        "Switch a device's PDU channel; power-ups wait for inrush headroom."),
        ]  # fmt: skip
