"""The real command intake and dispatcher, in-process, on a virtual clock (no broker, no daemon)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from firmware_host.commands.devices import NoArgs
from firmware_host.commands.dispatcher import CommandSpec, Dispatcher
from firmware_host.events import Event, EventBus
from firmware_host.groundlink.authority import CommandAuthority, Mode
from firmware_host.groundlink.intake import CommandIntake, TwoPersonRule
from protocols.ground import KeyFile, Keyring, Role, read_keyring
from tools.ground_client import sign_command
from tools.keys import create_key

T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class SetArgs(msgspec.Struct, forbid_unknown_fields=True):
    level: int


class FormatArgs(msgspec.Struct, forbid_unknown_fields=True):
    camera: str


class Reading(msgspec.Struct):
    level: int


@dataclass
class Rig:
    intake: CommandIntake
    clock: Clock
    keys: dict[str, KeyFile]
    keyring_path: Path
    executed: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def sign(
        self, key: str, name: str, args: dict[str, Any] | None = None, *, valid_for: float = 10
    ) -> dict[str, Any]:
        return sign_command(self.keys[key], name, args or {}, lifetime_s=valid_for,
                            now=self.clock.now)  # fmt: skip

    def receive(self, command: dict[str, Any]) -> None:
        self.intake.receive(json.dumps(command).encode())

    async def drain(self) -> None:
        while await self.intake.process_next(0):
            pass

    async def send(self, command: dict[str, Any]) -> dict[str, Any] | None:
        """The command's result (its last, if answered more than once), None if unanswered."""
        self.receive(command)
        await self.drain()
        return self.result(command["id"])

    def result(self, command_id: str) -> dict[str, Any] | None:
        answers = [r for r in self.results if r["id"] == command_id]
        return answers[-1] if answers else None

    def event_names(self) -> list[str]:
        return [e.name for e in self.events]


KEY_ROLES = {
    "fc-1": Role.FLIGHT_CONTROLLER,
    "fc-2": Role.FLIGHT_CONTROLLER,
    "director-1": Role.DIRECTOR,
    "director-2": Role.DIRECTOR,
    "crew-1": Role.CREW,
    "monitor-1": Role.MONITOR,
}


def make_keys(tmp_path: Path) -> tuple[dict[str, KeyFile], Path]:
    keys = {key_id: create_key(role, key_id) for key_id, role in KEY_ROLES.items()}
    path = tmp_path / "keyring.json"
    path.write_bytes(msgspec.json.encode(Keyring(keys=dict(keys))))
    return keys, path


def build(
    tmp_path: Path,
    keys: dict[str, KeyFile],
    keyring_path: Path,
    clock: Clock,
    *,
    two_person: dict[str, TwoPersonRule] | None = None,
    authority: Mode = "off",
) -> Rig:
    dispatcher = Dispatcher()
    rig: Rig

    async def status(_: NoArgs) -> dict[str, Any]:
        rig.executed.append(("status", {}))
        return {"devices": {"key": Reading(level=3)}}  # typed, as the daemon's snapshots are

    async def light_set(args: SetArgs) -> dict[str, Any]:
        rig.executed.append(("light.set", {"level": args.level}))
        return {"level": args.level}

    async def camera_format(args: FormatArgs) -> dict[str, Any]:
        rig.executed.append(("camera.format", {"camera": args.camera}))
        return {"formatted": args.camera}

    async def light_power(args: SetArgs) -> dict[str, Any]:
        rig.executed.append(("light.power", {"level": args.level}))
        return {}

    for spec in (
        CommandSpec("status", NoArgs, status, "status"),
        CommandSpec("light.set", SetArgs, light_set, "set a light"),
        CommandSpec("camera.format", FormatArgs, camera_format, "format", hazardous=True),
        # hazardous here so a rule with roles can be tried on a command two roles may send
        CommandSpec("light.power", SetArgs, light_power, "light power", hazardous=True),
    ):
        dispatcher.register(spec)
    bus = EventBus()
    results: list[dict[str, Any]] = []
    gate = None
    if authority != "off":
        gate = CommandAuthority(authority, tmp_path / "authority.db", bus, clock)
    intake = CommandIntake(
        read_keyring(keyring_path),
        dispatcher,
        bus,
        tmp_path / "commands.db",
        results.append,
        clock=clock,
        two_person=two_person,
        load_keyring=lambda: read_keyring(keyring_path),
        gate=gate,
    )
    rig = Rig(intake, clock, keys, keyring_path, results=results)
    bus.subscribe(rig.events.append)
    return rig


def rig_at(tmp_path: Path, **options: Any) -> Rig:
    keys, path = make_keys(tmp_path)
    return build(tmp_path, keys, path, Clock(), **options)
