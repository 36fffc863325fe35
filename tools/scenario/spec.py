"""The scenario file: a bench, the daemon's configuration, a timeline and expectations.

    [scenario]
    name = "power-emergency"
    description = "The station cuts the film's power mid-take."
    duration_s = 20            # scenario seconds, counted from every device online
    speed = 1                  # simulator physics time scale (`--speed` multiplies it)

    [bench]                    # the simulator bench: hil/bench.py's format
    seed = 4
    [[bench.device]]
    name = "cam-a"
    kind = "camera"
    pdu_channel = 0

    [daemon]                   # daemon configuration tables (cupola.example.toml)
    power = { cap_w = 300 }
    [daemon.device.cam-a]      # per-device daemon options
    priority = 100

    [[step]]                   # at scenario seconds: a command, a fault or an action
    at = 2
    command = "light.set"
    args = { device = "key", intensity_pct = 100 }
    expect = "ok"              # the result status the step needs (any: whatever it is)
    [[step]]
    at = 8
    fault = "unplug"           # a simulator fault (hil/bench.py), on `device`
    device = "cam-a"
    duration = 3
    [[step]]
    at = 12
    action = "daemon.kill"     # daemon.kill | daemon.start | broker.stop | broker.start

    [[contact]]                # daemon.data.contact windows, in wall seconds from the
    from_s = -60               # daemon's start (speed does not scale them)
    duration_s = 70

    [[expect]]                 # checked from outside the daemon once the run is over
    check = "event"
    name = "power.cap_met"
    after = 6                  # raised after this scenario second ...
    within_s = 2               # ... and within this many seconds of it

Scenario seconds are divided by the speed; expectation windows are wall seconds, because they
are about the daemon and the links, which no speed setting accelerates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

Action = Literal["daemon.kill", "daemon.start", "broker.stop", "broker.start"]
Check = Literal[
    "no_telemetry_gap",
    "within_cap",
    "takes_in_sync",
    "clips_in_sync",
    "commands_answered",
    "event",
    "no_event",
    "shotlog",
    "sim",
    "crew_alarm",
    "ground_held",
    "no_stale_alarm",
    "draw_between",
    "device_draw",
]
Seconds = Annotated[float, msgspec.Meta(ge=0)]


class ScenarioError(Exception):
    """The scenario file is wrong; the message names the file and what to fix."""


class About(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    description: str = ""
    duration_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    speed: Annotated[float, msgspec.Meta(gt=0, le=1000)] = 1.0


class Step(msgspec.Struct, forbid_unknown_fields=True):
    at: Seconds
    command: str | None = None
    args: dict[str, Any] = msgspec.field(default_factory=dict)
    expect: Literal["ok", "rejected", "failed", "any"] = "ok"
    confirm: bool = False  # a hazardous command: confirm it once armed
    fault: str | None = None
    device: str | None = None
    value: Any = True
    duration: Annotated[float, msgspec.Meta(gt=0)] | None = None
    action: Action | None = None

    @property
    def label(self) -> str:
        if self.command:
            return f"{self.command} {msgspec.json.encode(self.args).decode()}"
        if self.fault:
            lasting = f" for {self.duration:g} s" if self.duration else ""
            return f"fault {self.fault}={self.value} on {self.device}{lasting}"
        return str(self.action)


class Expect(msgspec.Struct, forbid_unknown_fields=True):
    check: Check
    name: str | None = None  # event, no_event
    source: str | None = None  # event, no_event: the device (or "daemon") that raised it
    after: Seconds = 0.0  # event: raised after this scenario second; draw checks: from
    until: Seconds | None = None  # draw_between, device_draw: up to this scenario second
    step_w: Annotated[float, msgspec.Meta(ge=0)] = 0.0  # draw_between: one shedding step
    within_s: Annotated[float, msgspec.Meta(gt=0)] | None = None  # event: this soon after
    deadline_s: Annotated[float, msgspec.Meta(gt=0)] = 2.0  # within_cap
    frames: Annotated[float, msgspec.Meta(ge=0)] = 1.0  # takes_in_sync, clips_in_sync
    takes: Annotated[int, msgspec.Meta(ge=0)] | None = None  # shotlog: how many takes
    status: str | None = None  # shotlog: every take's status
    device: str | None = None  # sim
    field: str | None = None  # sim: a field of the device's model state
    equals: Any = None  # sim
    at_least: float | None = None  # sim, device_draw (W)
    at_most: float | None = None  # sim, device_draw (W)

    @property
    def label(self) -> str:
        detail = {
            "event": f" {self.name} after {self.after:g} s"
            + (f" within {self.within_s:g} s" if self.within_s else ""),
            "no_event": f" {self.name}",
            "crew_alarm": f" {self.name} within {self.within_s or 1.0:g} s",
            "ground_held": f" while {self.name}",
            "no_stale_alarm": f" {self.source} {self.name}",
            "within_cap": f" (deadline {self.deadline_s:g} s)",
            "takes_in_sync": f" (within {self.frames:g} frame)",
            "clips_in_sync": f" (within {self.frames:g} frame, simulators' own clips)",
            "sim": f" {self.device}.{self.field}",
            "draw_between": f" {self.after:g}-{self.until or 'end':} s (step {self.step_w:g} W)",
            "device_draw": f" {self.device} {self.after:g}-{self.until or 'end':} s",
        }.get(self.check, "")
        return f"{self.check}{detail}"


class Contact(msgspec.Struct, forbid_unknown_fields=True):
    """A contact window in wall seconds from the daemon's start (it may have begun before)."""

    from_s: float
    duration_s: Annotated[float, msgspec.Meta(gt=0)]


class Scenario(msgspec.Struct, forbid_unknown_fields=True):
    scenario: About
    bench: dict[str, Any]
    daemon: dict[str, Any] = msgspec.field(default_factory=dict)
    contacts: list[Contact] = msgspec.field(name="contact", default_factory=list)
    steps: list[Step] = msgspec.field(name="step", default_factory=list)
    expects: list[Expect] = msgspec.field(name="expect", default_factory=list)

    @property
    def devices(self) -> list[dict[str, Any]]:
        return list(self.bench.get("device", []))


def load_scenario(path: Path) -> Scenario:
    try:
        scenario = msgspec.toml.decode(path.read_bytes(), type=Scenario)
    except (OSError, UnicodeDecodeError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ScenarioError(f"{path}: {exc}") from exc
    names = {d.get("name") for d in scenario.devices}
    for index, step in enumerate(scenario.steps):
        kinds = [k for k in (step.command, step.fault, step.action) if k]
        if len(kinds) != 1:
            raise ScenarioError(f"{path}: step {index + 1} needs one of command, fault, action")
        if step.fault and step.device not in names:
            raise ScenarioError(f"{path}: step {index + 1}: no bench device {step.device!r}")
    for expect in scenario.expects:
        needs = {"event": ("name",), "no_event": ("name",), "sim": ("device", "field"),
                 "crew_alarm": ("name",), "ground_held": ("name",),
                 "no_stale_alarm": ("name", "source")}  # fmt: skip
        missing = [f for f in needs.get(expect.check, ()) if getattr(expect, f) is None]
        if missing:
            raise ScenarioError(f"{path}: expectation {expect.check} needs {', '.join(missing)}")
    return scenario
