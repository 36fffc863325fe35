"""Stored sequences: a shoot script of timed and conditional commands, run onboard.

In the spirit of F Prime's command sequencer and cFS Stored Command: a script is loaded
(and fully validated: every command exists and its arguments check out, every condition
names a configured device and a field it reports), then started, paused, resumed or aborted
by command. Every step's outcome is an event. Steps run through the same dispatcher as any
operator command, so nothing a script does escapes validation or the budget governor.

A script (TOML):

    name = "scene 12A"

    [[step]]
    command = "light.set"
    args = { device = "key", intensity_pct = 80, fade_s = 2 }

    [[step]]
    after = 2.5                     # seconds after the previous step ended
    command = "record"
    args = { scene = "12A", take = 1 }

    [[step]]
    wait_until = { device = "cam-a", field = "state", equals = "recording" }
    timeout_s = 5                   # then the step fails
    on_failure = "abort"            # or "continue"

    [[step]]
    at = 20.0                       # seconds after the sequence started (pauses excluded)
    when = { device = "cam-a", field = "state", equals = "recording" }   # else skipped
    command = "cut"

Abort is clean: a command already sent is allowed to finish, nothing after it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import operator
import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

import msgspec

from firmware_host.commands.dispatcher import (
    CommandRejected,
    CommandSpec,
    Dispatcher,
    Outcome,
    Status,
    current_role,
)
from firmware_host.devices.agent import DeviceAgent
from firmware_host.events import EventBus
from firmware_host.tasks import TaskOwner
from protocols.catalogue import CAMERA_STATUS, LIGHT_STATUS, PDU_STATUS, Command
from protocols.ground import Role, may_send
from protocols.messages.common import Severity
from protocols.records import codec_of

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "equals": operator.eq,
    "not_equals": operator.ne,
    "above": operator.gt,
    "below": operator.lt,
}
_SNAPSHOT_FIELDS = ("online",)


class Condition(msgspec.Struct, forbid_unknown_fields=True):
    """`device`'s `field` compared with one value: equals, not_equals, above or below."""

    device: str
    field: str
    equals: Any = None
    not_equals: Any = None
    above: float | None = None
    below: float | None = None

    def test(self) -> tuple[str, Any]:
        given = [(n, getattr(self, n)) for n in _OPERATORS if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of equals, not_equals, above, below")
        return given[0]

    def holds(self, snapshot: Mapping[str, Any]) -> bool:
        op, expected = self.test()
        value = read_field(snapshot, self.field)
        if value is None:
            return False
        try:
            return bool(_OPERATORS[op](value, expected))
        except TypeError:
            return False

    def describe(self) -> str:
        op, expected = self.test()
        return f"{self.device}.{self.field} {op.replace('_', ' ')} {expected!r}"


def read_field(snapshot: Mapping[str, Any], field: str) -> Any:
    if field in _SNAPSHOT_FIELDS:
        return snapshot.get(field)
    status = snapshot.get("status") or {}
    return status.get(field)


class Step(msgspec.Struct, forbid_unknown_fields=True):
    command: str | None = None
    args: dict[str, Any] = msgspec.field(default_factory=dict)
    at: Annotated[float, msgspec.Meta(ge=0)] | None = None
    after: Annotated[float, msgspec.Meta(ge=0)] | None = None
    when: Condition | None = None
    wait_until: Condition | None = None
    timeout_s: Annotated[float, msgspec.Meta(gt=0, le=86400)] = 10.0
    on_failure: Literal["abort", "continue"] = "abort"
    label: str | None = None

    def title(self, index: int) -> str:
        what = (
            self.label
            or self.command
            or (f"wait for {self.wait_until.describe()}" if self.wait_until else "step")
        )
        return f"step {index + 1} ({what})"


class Script(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    steps: Annotated[list[Step], msgspec.Meta(min_length=1)] = msgspec.field(name="step")


class SequenceState(enum.StrEnum):
    LOADED = "loaded"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    FAILED = "failed"
    ABORTED = "aborted"


class LoadArgs(msgspec.Struct, forbid_unknown_fields=True):
    script: str  # TOML text


class NameArgs(msgspec.Struct, forbid_unknown_fields=True):
    name: str


class NoArgs(msgspec.Struct, forbid_unknown_fields=True):
    pass


def parse_script(text: str, dispatcher: Dispatcher, devices: Mapping[str, DeviceAgent]) -> Script:
    """A fully validated script, or CommandRejected naming the step and what is wrong."""
    try:
        script = msgspec.toml.decode(text, type=Script)
    except msgspec.DecodeError as exc:
        raise CommandRejected(f"script: {exc}") from exc
    last_at = 0.0
    for index, step in enumerate(script.steps):
        where = f"{script.name}: step {index + 1}"
        if step.command is None and step.wait_until is None:
            raise CommandRejected(f"{where}: needs a command or a wait_until")
        if step.at is not None and step.after is not None:
            raise CommandRejected(f"{where}: give `at` or `after`, not both")
        if step.at is not None:
            if step.at < last_at:
                raise CommandRejected(f"{where}: at={step.at} is earlier than a previous step")
            last_at = step.at
        if step.command is not None:
            if step.command.startswith("sequence."):
                raise CommandRejected(f"{where}: a sequence cannot drive sequences")
            try:
                dispatcher.parse_args(step.command, step.args)
            except CommandRejected as exc:
                raise CommandRejected(f"{where}: {exc}") from exc
        for condition in (step.when, step.wait_until):
            if condition is None:
                continue
            agent = devices.get(condition.device)
            if agent is None:
                raise CommandRejected(f"{where}: no device {condition.device!r}")
            try:
                condition.test()
            except ValueError as exc:
                raise CommandRejected(f"{where}: condition on {condition.device}: {exc}") from exc
            known = _status_fields(agent.kind)
            if condition.field not in known and condition.field not in _SNAPSHOT_FIELDS:
                raise CommandRejected(
                    f"{where}: a {agent.kind} does not report {condition.field!r}; "
                    f"fields: {sorted(known)}"
                )
    return script


def _status_fields(kind: str) -> set[str]:
    status_commands: dict[str, Command[Any, Any]] = {
        "camera": CAMERA_STATUS,
        "light": LIGHT_STATUS,
        "pdu": PDU_STATUS,
    }
    command = status_commands[kind]
    fields = {f.name for f in codec_of(command.reply).fields}
    return fields | ({"timecode_label"} if kind == "camera" else set())


CLOCK_RESOLUTION_S = time.get_clock_info("monotonic").resolution  # asyncio's own


def _now() -> float:
    """The loop's clock: what `asyncio.sleep` waits on, so virtual-time tests drive scripts."""
    return asyncio.get_running_loop().time()


class SequenceRunner:
    def __init__(
        self, dispatcher: Dispatcher, devices: Mapping[str, DeviceAgent], bus: EventBus
    ) -> None:
        self.dispatcher = dispatcher
        self.devices = devices
        self.bus = bus
        self.scripts: dict[str, Script] = {}
        self.roles: dict[str, Role | None] = {}  # who loaded each script: its steps run as them
        self.state = SequenceState.LOADED
        self.current: str | None = None
        self.step_index = 0
        self._task: asyncio.Task[None] | None = None
        self.tasks = TaskOwner("sequencer")  # the sequence run: it ends with run()
        self._running = asyncio.Event()  # cleared while paused
        self._abort = asyncio.Event()
        self._paused_since: float | None = None
        self._paused_total = 0.0

    # -- commands --------------------------------------------------------------------------

    async def load(self, args: LoadArgs) -> dict[str, Any]:
        script = parse_script(args.script, self.dispatcher, self.devices)
        role = current_role.get()
        for index, step in enumerate(script.steps):
            if step.command is None:
                continue
            if role is not None and not may_send(role, step.command):
                raise CommandRejected(
                    f"{script.name}: step {index + 1}: role {role} may not send {step.command!r}"
                )
            if self.dispatcher.spec(step.command).hazardous_for(step.args):
                raise CommandRejected(
                    f"{script.name}: step {index + 1}: {step.command} is hazardous and needs "
                    "a confirmation, so it cannot be scheduled"
                )
        self.roles[script.name] = role
        if self.current == script.name and self.active:
            raise CommandRejected(f"sequence {script.name!r} is running; abort it first")
        self.scripts[script.name] = script
        self.bus.emit(
            "sequence.loaded", Severity.INFO,
            f"sequence {script.name!r} loaded: {len(script.steps)} steps", sequence=script.name,
        )  # fmt: skip
        return {"name": script.name, "steps": len(script.steps)}

    @property
    def active(self) -> bool:
        return self.state in (SequenceState.RUNNING, SequenceState.PAUSED)

    async def start(self, args: NameArgs) -> dict[str, Any]:
        if self.active:
            raise CommandRejected(f"sequence {self.current!r} is {self.state}; abort it first")
        script = self.scripts.get(args.name)
        if script is None:
            raise CommandRejected(f"no sequence {args.name!r}; loaded: {sorted(self.scripts)}")
        if not self.tasks.running:
            raise CommandRejected("the sequencer is not running (starting or restarting)")
        self.current = script.name
        self.step_index = 0
        self.state = SequenceState.RUNNING
        self._abort.clear()
        self._running.set()
        self._paused_total = 0.0
        self._paused_since = None
        role_token = current_role.set(self.roles.get(script.name))
        try:
            self._task = self.tasks.start(self._run(script), name=f"sequence:{script.name}")
        finally:
            current_role.reset(role_token)
        return {"name": script.name, "state": self.state.value}

    async def pause(self, _: NoArgs) -> dict[str, Any]:
        if self.state is not SequenceState.RUNNING:
            raise CommandRejected(f"no sequence is running (state: {self.state})")
        self._running.clear()
        self._paused_since = _now()
        self.state = SequenceState.PAUSED
        self._emit("sequence.paused", Severity.INFO, f"sequence {self.current!r} paused")
        return self.status_dict()

    async def resume(self, _: NoArgs) -> dict[str, Any]:
        if self.state is not SequenceState.PAUSED:
            raise CommandRejected(f"no sequence is paused (state: {self.state})")
        if self._paused_since is not None:
            self._paused_total += _now() - self._paused_since
            self._paused_since = None
        self.state = SequenceState.RUNNING
        self._running.set()
        self._emit("sequence.resumed", Severity.INFO, f"sequence {self.current!r} resumed")
        return self.status_dict()

    async def abort(self, _: NoArgs) -> dict[str, Any]:
        if not self.active:
            raise CommandRejected(f"no sequence is running (state: {self.state})")
        self._abort.set()
        self._running.set()  # a paused sequence must wake up to stop
        if self._task is not None:
            await self._task
        return self.status_dict()

    async def run(self) -> None:
        """Own the sequence run: it ends when this does."""
        await self.tasks.serve()

    async def status(self, _: NoArgs) -> dict[str, Any]:
        return self.status_dict()

    def status_dict(self) -> dict[str, Any]:
        total = len(self.scripts[self.current].steps) if self.current in self.scripts else 0
        return {
            "name": self.current,
            "state": self.state.value,
            "step": self.step_index + 1 if self.active else None,
            "steps": total,
            "loaded": sorted(self.scripts),
        }

    # -- running ---------------------------------------------------------------------------

    def _emit(self, name: str, severity: Severity, message: str, **data: Any) -> None:
        self.bus.emit(name, severity, message, sequence=self.current, **data)

    def _elapsed(self, started: float) -> float:
        paused = self._paused_total
        if self._paused_since is not None:
            paused += _now() - self._paused_since
        return _now() - started - paused

    async def _sleep(self, seconds: float) -> bool:
        """Sleep, not counting pauses; False if aborted meanwhile.

        The end is a point on the clock that stops while paused, so no rounding accumulates;
        it is reached within the loop's clock resolution (a timer due sooner fires at once
        and the clock would not move: waiting on would spin).
        """
        until = self._elapsed(0.0) + seconds
        while True:
            await self._running.wait()
            if self._abort.is_set():
                return False
            left = until - self._elapsed(0.0)
            if left <= CLOCK_RESOLUTION_S:
                return True
            with contextlib.suppress(TimeoutError):  # a short slice, so a pause is noticed
                await asyncio.wait_for(self._abort.wait(), min(left, 0.05))

    async def _wait_until(self, condition: Condition, timeout_s: float) -> bool | None:
        """True when the condition holds, False on timeout, None if aborted."""
        waited = 0.0
        while True:
            if condition.holds(msgspec.to_builtins(self.devices[condition.device].snapshot())):
                return True
            if waited >= timeout_s:
                return False
            if not await self._sleep(0.05):
                return None
            waited += 0.05

    async def _run(self, script: Script) -> None:
        started = _now()
        previous_end = started
        self._emit("sequence.started", Severity.INFO, f"sequence {script.name!r} started")
        outcome_state = SequenceState.FINISHED
        for index, step in enumerate(script.steps):
            self.step_index = index
            title = step.title(index)
            if step.at is not None:
                delay = step.at - self._elapsed(started)
            else:
                delay = (step.after or 0.0) - (_now() - previous_end)
            if not await self._sleep(max(0.0, delay)) or not await self._running_or_abort():
                outcome_state = SequenceState.ABORTED
                break
            failed = await self._step(step, title)
            previous_end = _now()
            if failed is None:
                outcome_state = SequenceState.ABORTED
                break
            if failed and step.on_failure == "abort":
                outcome_state = SequenceState.FAILED
                break
        self.state = outcome_state
        severity = Severity.INFO if outcome_state is SequenceState.FINISHED else Severity.WARNING
        self._emit(
            f"sequence.{outcome_state.value}", severity,
            f"sequence {script.name!r} {outcome_state.value} after step {self.step_index + 1}"
            f" of {len(script.steps)}",
        )  # fmt: skip

    async def _running_or_abort(self) -> bool:
        await self._running.wait()
        return not self._abort.is_set()

    async def _step(self, step: Step, title: str) -> bool | None:
        """Run one step: False if it succeeded or was skipped, True if it failed, None: abort."""
        if step.wait_until is not None:
            held = await self._wait_until(step.wait_until, step.timeout_s)
            if held is None:
                return None
            if not held:
                self._emit(
                    "sequence.step_failed", Severity.WARNING,
                    f"{title}: {step.wait_until.describe()} did not happen within "
                    f"{step.timeout_s:g} s", step=self.step_index + 1,
                )  # fmt: skip
                return True
        if step.when is not None and not step.when.holds(
            msgspec.to_builtins(self.devices[step.when.device].snapshot())
        ):
            self._emit(
                "sequence.step_skipped", Severity.INFO,
                f"{title} skipped: {step.when.describe()} does not hold",
                step=self.step_index + 1,
            )  # fmt: skip
            return False
        if step.command is None:
            self._emit("sequence.step", Severity.INFO, f"{title}: ok", step=self.step_index + 1)
            return False
        outcome: Outcome = await self.dispatcher.execute(step.command, step.args)
        ok = outcome.status is Status.OK
        self._emit(
            "sequence.step" if ok else "sequence.step_failed",
            Severity.INFO if ok else Severity.WARNING,
            f"{title}: {outcome.status.value}" + (f": {outcome.reason}" if outcome.reason else ""),
            step=self.step_index + 1, command=step.command, status=outcome.status.value,
        )  # fmt: skip
        return not ok

    def commands(self) -> list[CommandSpec[Any]]:
        return [
            CommandSpec("sequence.load", LoadArgs, self.load, "Load and validate a shoot script."),
            CommandSpec("sequence.start", NameArgs, self.start, "Start a loaded sequence."),
            CommandSpec("sequence.pause", NoArgs, self.pause, "Pause the running sequence."),
            CommandSpec("sequence.resume", NoArgs, self.resume, "Resume a paused sequence."),
            CommandSpec("sequence.abort", NoArgs, self.abort,
                        "Stop the sequence after the step in progress."),
            CommandSpec("sequence.status", NoArgs, self.status, "Where the sequence is."),
        ]  # fmt: skip
