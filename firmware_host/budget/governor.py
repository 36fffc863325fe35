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
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from firmware_host.budget.models import CameraModel, LightModel, PduModel, RecordingLoad
from protocols.messages.camera import CameraState


@dataclass(frozen=True)
class LightSetting:
    on: bool
    permille: int


@dataclass(frozen=True)
class CameraSetting:
    state: CameraState
    recording: RecordingLoad = field(default_factory=RecordingLoad)


@dataclass(frozen=True)
class FixedSetting:
    """A load the governor cannot change (a PDU's own electronics)."""


Setting = LightSetting | CameraSetting | FixedSetting
Model = LightModel | CameraModel | PduModel


@dataclass
class Load:
    name: str
    kind: str
    model: Model
    setting: Setting
    priority: int = 50  # shedding order: lower is shed first
    floor_permille: int = 0  # lights: never dimmed below this when shedding
    measured_w: float | None = None
    measured_at: float = 0.0
    changed_at: float = 0.0

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

    # -- what is drawn now -----------------------------------------------------------------

    @property
    def reserve_w(self) -> float:
        return self.cap_w * self.reserve_fraction

    def add(self, load: Load) -> None:
        self.loads[load.name] = load

    def set_cap(self, cap_w: float) -> None:
        self.cap_w = cap_w

    def observe(self, name: str, setting: Setting) -> None:
        """The device reports this setting (status poll, or a command's reply)."""
        load = self.loads[name]
        if setting != load.setting:
            load.setting = setting
            load.changed_at = self.clock()

    def measure(self, name: str, watts: float) -> None:
        load = self.loads[name]
        load.measured_w = watts
        load.measured_at = self.clock()

    def draw(self, name: str) -> tuple[float, bool]:
        """(watts, measured?) of one load."""
        load = self.loads[name]
        fresh = self.clock() - load.measured_at <= self.measurement_max_age_s
        if load.measured_w is not None and fresh and load.measured_at >= load.changed_at:
            return load.measured_w, True
        return load.model_w(), False

    def snapshot(self) -> Snapshot:
        snap = Snapshot(0.0)
        for name in self.loads:
            watts, measured = self.draw(name)
            snap.total_w += watts
            (snap.measured if measured else snap.modelled).append(name)
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
                grant = replace(setting, permille=min(granted, setting.permille))
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

    def shed_plan(self) -> list[ShedAction]:
        """What to change, in order, to get from over the cap back under cap minus reserve."""
        snap = self.snapshot()
        if snap.total_w <= self.cap_w:
            return []
        needed = snap.total_w - (self.cap_w - self.reserve_w)
        actions: list[ShedAction] = []
        by_priority = sorted(self.loads.values(), key=lambda load: (load.priority, load.name))
        lights = [ld for ld in by_priority if isinstance(ld.model, LightModel)]
        cameras = [ld for ld in by_priority if isinstance(ld.model, CameraModel)]
        for stage in (self._dim, self._switch_off, self._stop, self._sleep):
            for load in cameras if stage in (self._stop, self._sleep) else lights:
                if needed <= 0:
                    return actions
                action = stage(load, needed)
                if action is not None and action.saving_w > 0:
                    actions.append(action)
                    needed -= action.saving_w
        return actions

    def _dim(self, load: Load, needed: float) -> ShedAction | None:
        setting = load.setting
        model = load.model
        if not isinstance(setting, LightSetting) or not isinstance(model, LightModel):
            return None
        if not setting.on or setting.permille <= load.floor_permille:
            return None
        now_w = model.draw(True, setting.permille)
        target = max(load.floor_permille, model.permille_within(now_w - needed))
        target = min(target, setting.permille)
        new = LightSetting(True, target)
        return ShedAction(
            load.name, new, now_w - model.draw(True, target),
            f"dim {load.name} from {setting.permille / 10:.1f} % to {target / 10:.1f} %",
        )  # fmt: skip

    def _switch_off(self, load: Load, _: float) -> ShedAction | None:
        setting = load.setting
        if not isinstance(setting, LightSetting) or not setting.on or load.floor_permille > 0:
            return None
        new = LightSetting(False, 0)
        return ShedAction(
            load.name, new, load.model_w() - load.model_w(new), f"switch {load.name} off"
        )

    def _stop(self, load: Load, _: float) -> ShedAction | None:
        setting = load.setting
        if not self.stop_cameras or not isinstance(setting, CameraSetting):
            return None
        if setting.state not in (CameraState.RECORDING, CameraState.ARMED):
            return None
        new = CameraSetting(CameraState.STANDBY, setting.recording)
        return ShedAction(
            load.name, new, load.model_w() - load.model_w(new),
            f"cut {load.name} (configured: cameras may stop when shedding)",
        )  # fmt: skip

    def _sleep(self, load: Load, _: float) -> ShedAction | None:
        setting = load.setting
        if not isinstance(setting, CameraSetting) or setting.state is not CameraState.STANDBY:
            return None
        new = CameraSetting(CameraState.OFF, setting.recording)
        return ShedAction(
            load.name, new, load.model_w() - load.model_w(new), f"put idle {load.name} to sleep"
        )


def _describe(load: Load, setting: Setting) -> str:
    if isinstance(setting, LightSetting):
        level = f"{setting.permille / 10:.1f} %" if setting.on else "off"
        return f"light {load.name} to {level}"
    if isinstance(setting, CameraSetting):
        return f"camera {load.name} {setting.state.name.lower()}"
    return load.name
