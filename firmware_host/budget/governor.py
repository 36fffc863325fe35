"""The power governor: admission of every draw increase, and shedding when over the cap.

Pure and synchronous: it knows the loads, their models, their last measurements and the cap,
and answers two questions. May this device go to this setting? (with the numbers, and, for a
light asking for best effort, the most it may have). What must be shed to get back under the
cap? (in priority order: lights dim before anything stops, the lowest priority first; a
rolling camera stops only if configured, and only after every light is at its floor).

Each load's draw is its PDU measurement when that is fresh and taken after the load last
changed, else its model; every decision says which it used. The reserve is both a margin for
admission and the hysteresis of shedding: shedding starts above the cap and stops at the cap
minus the reserve, so it does not flap.

A PDU reading describes a load only if it was *requested* after the load last changed: a
reading sampled before a dim but received after it would otherwise make the governor shed the
same watts twice. A load's measured draw is the mean of its last readings since that change
(or since its draw last moved by more than reading noise), and the plan keeps the mean's
uncertainty (two standard errors of the total) as extra margin.

Shedding is minimal. Every load has a ladder of settings from the present one down, one
*shedding step* apart (see `ladder`): a light dims in steps of `DIM_STEP_PERMILLE` of output
down to its floor, then switches off; a camera stops (if configured), then sleeps. The plan
walks down the ladders greedily in priority order until the draw fits under the target, then
walks back up, highest priority first, every step that still fits. So the planned draw ends
under the target by less than the cost of raising any shed load by one step, and no step
claims more than the load draws now. What a light was shed from is remembered, and it comes
back (highest priority first, one step at a time) when there is room again.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from firmware_host.budget.models import CameraModel, LightModel, PduModel, RecordingLoad
from protocols.messages.camera import CameraState


# Settings are built from every poll of a light or camera: msgspec's frozen Structs build and
# compare in a fifth of a frozen dataclass's time.
class LightSetting(msgspec.Struct, frozen=True):
    on: bool
    permille: int


class CameraSetting(msgspec.Struct, frozen=True):
    state: CameraState
    recording: RecordingLoad = msgspec.field(default_factory=RecordingLoad)


class FixedSetting(msgspec.Struct, frozen=True):
    """A load the governor cannot change (a PDU's own electronics)."""


Setting = LightSetting | CameraSetting | FixedSetting
Model = LightModel | CameraModel | PduModel

DIM_STEP_PERMILLE = 50  # one shedding step of a light: 5 % of its output
READINGS_AVERAGED = 20  # a load's measured draw: the mean of at most this many readings
UNCERTAINTY_SIGMAS = 2.0  # the plan keeps this many standard errors of the total as margin
MOVED_W, MOVED_FRACTION = 1.0, 0.05  # a reading this far off the mean starts a new one


@dataclass
class Load:
    name: str
    kind: str
    model: Model
    setting: Setting
    priority: int = 50  # shedding order: lower is shed first
    floor_permille: int = 0  # lights: never dimmed below this when shedding
    readings: deque[float] = field(default_factory=lambda: deque(maxlen=READINGS_AVERAGED))
    measured_at: float = 0.0
    changed_at: float = 0.0

    @property
    def measured_w(self) -> float | None:
        return math.fsum(self.readings) / len(self.readings) if self.readings else None

    @property
    def measured_variance(self) -> float:
        """Variance of the mean of the readings (0 with fewer than two). Summed in floats:
        `statistics.variance` is exact in fractions and took 104 us for 20 readings, for
        every measured load at every snapshot; this takes 4."""
        count, mean = len(self.readings), self.measured_w
        if count < 2 or mean is None:
            return 0.0
        return math.fsum([(r - mean) ** 2 for r in self.readings]) / (count - 1) / count

    def model_w(self, setting: Setting | None = None) -> float:
        setting = self.setting if setting is None else setting
        if isinstance(self.model, LightModel) and isinstance(setting, LightSetting):
            return self.model.draw(setting.on, setting.permille)
        if isinstance(self.model, CameraModel) and isinstance(setting, CameraSetting):
            return self.model.draw(setting.state, setting.recording)
        if isinstance(self.model, PduModel):
            return self.model.own_w
        raise TypeError(f"{self.name}: setting {setting!r} does not fit a {self.kind}")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    setting: Setting  # what may be applied (less than asked for, for a best-effort grant)
    needed_w: float
    current_w: float
    free_w: float
    reason: str
    source: str  # which draw figures the decision used


@dataclass(frozen=True)
class ShedAction:
    load: str
    setting: Setting
    saving_w: float
    reason: str


@dataclass
class Snapshot:
    total_w: float
    measured: list[str] = field(default_factory=list)
    modelled: list[str] = field(default_factory=list)
    variance: float = 0.0  # of the measured part of the total

    @property
    def uncertainty_w(self) -> float:
        return UNCERTAINTY_SIGMAS * math.sqrt(self.variance)

    @property
    def source(self) -> str:
        if not self.measured:
            return "modelled"
        if not self.modelled:
            return "measured by the PDU"
        loads = len(self.measured) + len(self.modelled)
        return f"measured by the PDU for {len(self.measured)} of {loads} loads"


class PowerGovernor:
    def __init__(
        self,
        cap_w: float,
        reserve_fraction: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        measurement_max_age_s: float = 3.0,
        stop_cameras: bool = False,
    ) -> None:
        self.cap_w = cap_w
        self.reserve_fraction = reserve_fraction
        self.clock = clock
        self.measurement_max_age_s = measurement_max_age_s
        self.stop_cameras = stop_cameras
        self.loads: dict[str, Load] = {}
        self.wanted: dict[str, LightSetting] = {}  # what shed lights were at before

    # -- what is drawn now -----------------------------------------------------------------

    @property
    def reserve_w(self) -> float:
        return self.cap_w * self.reserve_fraction

    def add(self, load: Load) -> None:
        self.loads[load.name] = load

    def set_cap(self, cap_w: float) -> None:
        self.cap_w = cap_w

    def observe(self, name: str, setting: Setting) -> bool:
        """The device reports this setting (status poll, or a command's reply); True if it
        differs from the setting known so far."""
        load = self.loads[name]
        if setting == load.setting:
            return False
        load.setting = setting
        load.changed_at = self.clock()
        load.readings.clear()
        return True

    def measure(self, name: str, watts: float, requested_at: float | None = None) -> bool:
        """A reading of one load, requested at `requested_at` (default: now); True if it is
        the load's first since it changed, or the draw moved.

        A reading requested before the load last changed may show it before or after the
        change: it is dropped, and the model stands in until a reading requested later."""
        load = self.loads[name]
        now = self.clock()
        if (now if requested_at is None else requested_at) < load.changed_at:
            return False
        mean = load.measured_w
        moved = mean is None or abs(watts - mean) > max(MOVED_W, MOVED_FRACTION * mean)
        if moved:
            load.readings.clear()  # the draw moved (an inrush over, a fade, a fold-back)
        load.readings.append(watts)
        load.measured_at = now
        return moved

    def commanded(self, name: str) -> None:
        """The crew set this load themselves: their setting replaces anything shed."""
        self.wanted.pop(name, None)

    def draw(self, name: str) -> tuple[float, bool]:
        """(watts, measured?) of one load."""
        load = self.loads[name]
        fresh = self.clock() - load.measured_at <= self.measurement_max_age_s
        measured = load.measured_w
        if measured is not None and fresh:
            return measured, True
        return load.model_w(), False

    def snapshot(self) -> Snapshot:
        snap = Snapshot(0.0)
        for name, load in self.loads.items():
            watts, measured = self.draw(name)
            snap.total_w += watts
            (snap.measured if measured else snap.modelled).append(name)
            snap.variance += load.measured_variance if measured else 0.0
        return snap

    def free_w(self) -> float:
        return self.cap_w - self.reserve_w - self.snapshot().total_w

    def over_cap(self) -> bool:
        return self.snapshot().total_w > self.cap_w

    # -- admission -------------------------------------------------------------------------

    def admit(self, name: str, setting: Setting, *, best_effort: bool = False) -> Decision:
        load = self.loads[name]
        snap = self.snapshot()
        current, _ = self.draw(name)
        free = self.cap_w - self.reserve_w - snap.total_w
        needed = load.model_w(setting)
        what = _describe(load, setting)
        numbers = (
            f"{what} needs {needed:.0f} W (draws {current:.0f} W now); {max(free, 0.0):.0f} W of "
            f"the {self.cap_w:.0f} W cap is free (reserve {self.reserve_w:.0f} W; "
            f"total {snap.total_w:.0f} W, {snap.source})"
        )
        if needed <= current or needed - current <= free:
            return Decision(True, setting, needed, current, free, numbers, snap.source)
        if best_effort and isinstance(setting, LightSetting) and isinstance(load.model, LightModel):
            granted = load.model.permille_within(current + max(free, 0.0))
            if setting.on and granted > 0:
                grant = msgspec.structs.replace(setting, permille=min(granted, setting.permille))
                reason = (
                    f"best effort: granted {grant.permille / 10:.1f} % of "
                    f"{setting.permille / 10:.1f} %; {numbers}"
                )
                return Decision(
                    True, grant, load.model_w(grant), current, free, reason, snap.source
                )
        return Decision(False, load.setting, needed, current, free, numbers, snap.source)

    def admit_all(self, changes: list[tuple[str, Setting]]) -> Decision:
        """Admit several changes that happen together (a take starting on every camera)."""
        snap = self.snapshot()
        free = self.cap_w - self.reserve_w - snap.total_w
        current = sum(self.draw(name)[0] for name, _ in changes)
        needed = sum(self.loads[name].model_w(setting) for name, setting in changes)
        what = ", ".join(_describe(self.loads[name], setting) for name, setting in changes)
        reason = (
            f"{what} need {needed:.0f} W together (draw {current:.0f} W now); "
            f"{max(free, 0.0):.0f} W of the {self.cap_w:.0f} W cap is free "
            f"(reserve {self.reserve_w:.0f} W; total {snap.total_w:.0f} W, {snap.source})"
        )
        allowed = needed - current <= free or needed <= current
        first = changes[0][1] if changes else FixedSetting()
        return Decision(allowed, first, needed, current, free, reason, snap.source)

    # -- shedding --------------------------------------------------------------------------

    def target_w(self, snap: Snapshot) -> float:
        """Where shedding brings the draw: the cap less the reserve and the reading noise."""
        return self.cap_w - self.reserve_w - snap.uncertainty_w

    def ladder(self, load: Load, top: Setting | None = None) -> list[Setting]:
        """The settings `load` may be shed to, from `top` (default: its present one) down,
        each one shedding step below the last: a light's 5 % steps of output down to its
        floor, then off (if its floor is 0); a camera's stop (if configured), then sleep."""
        setting = load.setting if top is None else top
        if isinstance(setting, LightSetting) and isinstance(load.model, LightModel):
            if not setting.on:
                return [setting]
            rungs: list[Setting] = [setting]
            level = setting.permille - setting.permille % DIM_STEP_PERMILLE
            level = level if level < setting.permille else level - DIM_STEP_PERMILLE
            while level > load.floor_permille:
                rungs.append(LightSetting(True, level))
                level -= DIM_STEP_PERMILLE
            if setting.permille > load.floor_permille:
                rungs.append(LightSetting(True, load.floor_permille))
            if load.floor_permille == 0:
                rungs.append(LightSetting(False, 0))
            return rungs
        if isinstance(setting, CameraSetting):
            rungs = [setting]
            if setting.state in (CameraState.RECORDING, CameraState.ARMED) and self.stop_cameras:
                setting = CameraSetting(CameraState.STANDBY, setting.recording)
                rungs.append(setting)
            if setting.state is CameraState.STANDBY:
                rungs.append(CameraSetting(CameraState.OFF, setting.recording))
            return rungs
        return [setting]

    def step_w(self, load: Load) -> float:
        """One shedding step of `load` at its costliest: the most the draw can move between
        two neighbouring rungs of its full ladder (a light: the top 5 % of its output, or
        its switch from 0 % to off; a camera: its stop or its sleep)."""
        top: Setting
        if isinstance(load.model, LightModel):
            top = LightSetting(True, 1000)
        elif isinstance(load.model, CameraModel):
            top = CameraSetting(CameraState.RECORDING)
        else:
            return 0.0
        watts = [load.model_w(s) for s in self.ladder(load, top)]
        return max((a - b for a, b in itertools.pairwise(watts)), default=0.0)

    def shed_plan(self) -> list[ShedAction]:
        """What to change to get from over the cap back under the target, taking no more
        than it must: one action per load, the lowest priority first."""
        snap = self.snapshot()
        if snap.total_w <= self.cap_w:
            return []
        plan = _Plan(self, snap)
        order = sorted(self.loads.values(), key=lambda load: (load.priority, load.name))
        lights = [ld for ld in order if isinstance(ld.model, LightModel)]
        cameras = [ld for ld in order if isinstance(ld.model, CameraModel)]
        stages: list[tuple[list[Load], Callable[[Setting], bool]]] = [
            (lights, lambda s: isinstance(s, LightSetting) and s.on),  # dim
            (lights, lambda s: True),  # switch off
            (cameras, lambda s: isinstance(s, CameraSetting) and s.state is not CameraState.OFF),
            (cameras, lambda s: True),  # sleep
        ]
        for loads, allowed in stages:
            for load in loads:
                while plan.excess_w > 0 and plan.can_lower(load.name, allowed):
                    plan.lower(load.name)
        for load in reversed(order):  # give back what still fits, the most important first
            while plan.can_raise(load.name):
                plan.raise_(load.name)
        return plan.actions()

    def restore_step(self) -> ShedAction | None:
        """The next step back towards what a shed light was set to, if there is room: the
        highest-priority shed light only, as far up its ladder as fits under the target.
        A light measured above its model is expected to stay that far above it (else the
        step would overshoot the cap and be shed again: flapping)."""
        if not self.wanted:
            return None
        name = max(self.wanted, key=lambda n: (self.loads[n].priority, n))
        load, wanted = self.loads[name], self.wanted[name]
        snap = self.snapshot()
        now_w, measured = self.draw(name)
        modelled = load.model_w()
        scale = max(1.0, now_w / modelled) if measured and modelled > 0 else 1.0
        room = self.target_w(snap) - snap.total_w + now_w
        switching_on = isinstance(load.setting, LightSetting) and not load.setting.on
        if switching_on and isinstance(load.model, LightModel) and load.model.inrush_w > room:
            return None  # its inrush would not fit
        rungs = self.ladder(load, wanted)
        here = next((i for i, r in enumerate(rungs) if load.model_w(r) <= load.model_w()), None)
        fits = [r for r in rungs[:here] if load.model_w(r) * scale <= room]
        if not fits:
            return None
        new = fits[0]
        return ShedAction(
            name, new, now_w - load.model_w(new) * scale,
            f"bring {_describe(load, new)} (set to {_level(wanted)} before shedding)",
        )  # fmt: skip

    def shed(self, action: ShedAction) -> None:
        """A shed action was carried out: remember what a light was at, to restore it."""
        load = self.loads[action.load]
        if isinstance(load.setting, LightSetting) and action.load not in self.wanted:
            self.wanted[action.load] = load.setting
        self.observe(action.load, action.setting)

    def restored(self, action: ShedAction) -> None:
        """A restore step was carried out; a light back where it was is no longer shed."""
        if self.wanted.get(action.load) == action.setting:
            del self.wanted[action.load]
        self.observe(action.load, action.setting)


class _Plan:
    """A shedding plan being built: a rung on its ladder for every load."""

    def __init__(self, governor: PowerGovernor, snap: Snapshot) -> None:
        self.governor = governor
        self.ladders = {name: governor.ladder(load) for name, load in governor.loads.items()}
        self.rung = dict.fromkeys(governor.loads, 0)
        self.now_w = {name: governor.draw(name)[0] for name in governor.loads}
        self.total_w = snap.total_w
        self.target_w = governor.target_w(snap)

    @property
    def excess_w(self) -> float:
        return self.total_w - self.target_w

    def draw_at(self, name: str, rung: int) -> float:
        """A lower rung never draws more than the load draws now (its model may say so)."""
        if rung == 0:
            return self.now_w[name]
        load = self.governor.loads[name]
        return min(self.now_w[name], load.model_w(self.ladders[name][rung]))

    def can_lower(self, name: str, allowed: Callable[[Setting], bool]) -> bool:
        """May `name` go one step down, to a setting `allowed` in this stage?"""
        rung, ladder = self.rung[name], self.ladders[name]
        return rung + 1 < len(ladder) and allowed(ladder[rung + 1])

    def lower(self, name: str) -> None:
        rung = self.rung[name]
        self.total_w -= self.draw_at(name, rung) - self.draw_at(name, rung + 1)
        self.rung[name] = rung + 1

    def can_raise(self, name: str) -> bool:
        rung = self.rung[name]
        if rung == 0:
            return False
        cost = self.draw_at(name, rung - 1) - self.draw_at(name, rung)
        return self.total_w + cost <= self.target_w

    def raise_(self, name: str) -> None:
        rung = self.rung[name]
        self.total_w += self.draw_at(name, rung - 1) - self.draw_at(name, rung)
        self.rung[name] = rung - 1

    def actions(self) -> list[ShedAction]:
        order = sorted(self.governor.loads.values(), key=lambda ld: (ld.priority, ld.name))
        return [
            ShedAction(
                load.name, self.ladders[load.name][self.rung[load.name]],
                self.now_w[load.name] - self.draw_at(load.name, self.rung[load.name]),
                _shed_reason(load, self.ladders[load.name][self.rung[load.name]]),
            )
            for load in order
            if self.rung[load.name] > 0
        ]  # fmt: skip


def _shed_reason(load: Load, new: Setting) -> str:
    old = load.setting
    if isinstance(old, LightSetting) and isinstance(new, LightSetting):
        if not new.on:
            return f"switch {load.name} off (from {old.permille / 10:.1f} %)"
        return f"dim {load.name} from {old.permille / 10:.1f} % to {new.permille / 10:.1f} %"
    if isinstance(new, CameraSetting) and new.state is CameraState.STANDBY:
        return f"cut {load.name} (configured: cameras may stop when shedding)"
    if isinstance(old, CameraSetting) and old.state is not CameraState.STANDBY:
        return f"cut {load.name} and put it to sleep (configured: cameras may stop)"
    return f"put idle {load.name} to sleep"


def _level(setting: LightSetting) -> str:
    return f"{setting.permille / 10:.1f} %" if setting.on else "off"


def _describe(load: Load, setting: Setting) -> str:
    if isinstance(setting, LightSetting):
        return f"light {load.name} to {_level(setting)}"
    if isinstance(setting, CameraSetting):
        return f"camera {load.name} {setting.state.name.lower()}"
    return load.name
