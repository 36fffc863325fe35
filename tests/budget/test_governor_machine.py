"""Whatever is commanded, whatever the cap does and whatever the devices really draw:
the draw is never over the cap for longer than the shedding deadline, and media is never
promised twice."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from firmware_host.budget.governor import (
    CameraSetting,
    FixedSetting,
    Load,
    PowerGovernor,
    Setting,
)
from firmware_host.budget.governor import (
    LightSetting as Light,
)
from firmware_host.budget.media import MediaBudget
from firmware_host.budget.models import CameraModel, LightModel, PduModel
from hil.models.base import ManualClock
from protocols.messages.camera import CameraState

pytestmark = pytest.mark.long

DEADLINE_S = 1.0
LATENCY_S = 0.05  # a device applies a command this long after it is sent
TICK_S = 0.2  # the governor's check interval
START = datetime.datetime(2026, 11, 25, 8, tzinfo=datetime.UTC).timestamp()


@dataclass
class Plant:
    """What the devices really do: settings apply after a latency; true draw = model x factor."""

    loads: dict[str, Load]
    factor: dict[str, float] = field(default_factory=dict)
    actual: dict[str, Setting] = field(default_factory=dict)
    pending: list[tuple[float, str, Setting]] = field(default_factory=list)

    def send(self, now: float, name: str, setting: Setting) -> None:
        self.pending.append((now + LATENCY_S, name, setting))

    def settle(self, now: float) -> None:
        due = [p for p in self.pending if p[0] <= now]
        self.pending = [p for p in self.pending if p[0] > now]
        for _, name, setting in sorted(due, key=lambda p: p[0]):
            self.actual[name] = setting

    def watts(self, name: str) -> float:
        setting = self.actual.get(name, self.loads[name].setting)
        return self.loads[name].model_w(setting) * self.factor.get(name, 1.0)

    def total(self) -> float:
        return sum(self.watts(n) for n in self.loads)


class BudgetMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(START)
        self.governor = PowerGovernor(300.0, 0.1, clock=self.clock.now)
        lights = {"key": (20, 100.0), "fill": (10, 60.0), "back": (15, 100.0)}
        for name, (priority, watts) in lights.items():
            self.governor.add(
                Load(name, "light", LightModel(max_w=watts), Light(False, 0), priority)
            )
        for name in ("cam-a", "cam-b"):
            self.governor.add(
                Load(name, "camera", CameraModel(), CameraSetting(CameraState.STANDBY), 100)
            )
        self.governor.add(Load("pdu", "pdu", PduModel(), FixedSetting(), 1000))
        self.plant = Plant(self.governor.loads)
        self.over_since: float | None = None
        self.restored_unprovoked = False  # a light was restored and nothing changed since
        self.media = MediaBudget(
            take_fit="refuse",
            shoot_days=12,
            shoot_start=datetime.date(2026, 11, 25),
            clock=self.clock.now,
        )
        for name in ("cam-a", "cam-b"):
            self.media.observe(name, 50e9, 0.0, 700_000)
        self.rolling: set[str] = set()
        for name in ("key", "fill", "back"):  # a lit set: a cap cut overloads at once
            self.light(name, 800, best_effort=True)
        self.plant.settle(self.clock.now() + LATENCY_S)

    def _send(self, name: str, setting: Setting) -> None:
        self.restored_unprovoked = False
        self.plant.send(self.clock.now(), name, setting)
        self.governor.observe(name, setting)  # committed once the device acknowledged

    @rule(name=st.sampled_from(["key", "fill", "back"]), level=st.integers(0, 1000),
          best_effort=st.booleans())  # fmt: skip
    def light(self, name: str, level: int, best_effort: bool) -> None:
        decision = self.governor.admit(name, Light(True, level), best_effort=best_effort)
        if decision.allowed:
            self.governor.commanded(name)
            self._send(name, decision.setting)

    @rule(name=st.sampled_from(["key", "fill", "back"]))
    def light_off(self, name: str) -> None:
        self.governor.commanded(name)
        self._send(name, Light(False, 0))

    @rule(camera=st.sampled_from(["cam-a", "cam-b"]), planned=st.floats(1, 900))
    def record(self, camera: str, planned: float) -> None:
        if camera in self.rolling:
            return
        fit = self.media.admit_take([camera], planned)
        decision = self.governor.admit(camera, CameraSetting(CameraState.RECORDING))
        if fit.allowed and decision.allowed:
            self.media.take_started([camera], planned)
            self.rolling.add(camera)
            self._send(camera, CameraSetting(CameraState.RECORDING))

    @precondition(lambda self: bool(self.rolling))
    @rule(data=st.data())
    def cut(self, data: st.DataObject) -> None:
        camera = data.draw(st.sampled_from(sorted(self.rolling)))
        self.rolling.discard(camera)
        self.media.take_ended([camera])
        self._send(camera, CameraSetting(CameraState.STANDBY))

    @rule(cap=st.floats(110, 400))
    def cap_change(self, cap: float) -> None:
        self.restored_unprovoked = False
        self.governor.set_cap(cap)

    @rule(name=st.sampled_from(["key", "fill", "back", "cam-a", "cam-b"]),
          factor=st.floats(0.9, 1.3))  # fmt: skip
    def device_draws_other_than_modelled(self, name: str, factor: float) -> None:
        self.restored_unprovoked = False
        self.plant.factor[name] = factor

    @rule(ticks=st.integers(1, 20))
    def time_passes(self, ticks: int) -> None:
        for _ in range(ticks):
            self.clock.advance(TICK_S)
            now = self.clock.now()
            self.plant.settle(now)
            for camera in self.rolling:  # media fills while rolling
                card = self.media.cards[camera]
                used = min(card.capacity, card.used + card.byte_rate * TICK_S)
                self.media.observe(camera, card.capacity, used, card.bitrate_kbps)
            for name in self.governor.loads:  # the PDU measures every channel
                self.governor.measure(name, self.plant.watts(name))
            plan = self.governor.shed_plan()
            assert not (plan and self.restored_unprovoked), (
                f"flapping: shedding {[a.reason for a in plan]} right after restoring, "
                "with nothing changed in between"
            )
            for action in plan:
                self.plant.send(now, action.load, action.setting)
                self.governor.shed(action)
                if action.load in self.rolling:
                    self.rolling.discard(action.load)
            restore = None if plan else self.governor.restore_step()
            if restore is not None:  # shed lights come back when there is room again
                self.plant.send(now, restore.load, restore.setting)
                self.governor.restored(restore)
                self.restored_unprovoked = True
            self._track_overload()

    def _track_overload(self) -> None:
        if self.plant.total() > self.governor.cap_w:
            self.over_since = self.over_since if self.over_since is not None else self.clock.now()
        else:
            self.over_since = None

    @invariant()
    def never_over_the_cap_for_longer_than_the_deadline(self) -> None:
        if self.over_since is not None:
            assert self.clock.now() - self.over_since <= DEADLINE_S, (
                f"{self.plant.total():.1f} W over the {self.governor.cap_w:.1f} W cap since "
                f"{self.clock.now() - self.over_since:.2f} s"
            )

    @invariant()
    def media_never_overcommitted(self) -> None:
        for card in self.media.cards.values():
            assert card.used + card.reserved <= card.capacity + 1e-6


TestBudgetMachine = BudgetMachine.TestCase
TestBudgetMachine.settings = settings(
    parent=settings.get_profile("default"), max_examples=300, stateful_step_count=30
)
