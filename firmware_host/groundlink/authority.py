"""Command authority: at most one console commands the node (or each role, where configured).

A console is its key. `[auth] authority`:
  - "off": every authenticated key commands (within its role), as before;
  - "node": one key holds authority over the node;
  - "role": one key per role holds that role's authority (the director's console and the
    crew's laptop each command their own things).
With authority on, the node refuses any command that changes something from a key that does
not hold the authority of its scope, with a result saying who does. Reading (what a monitor
key may send), cancelling one's own command, revoking a key and the authority commands
themselves are always allowed.

Hand-over: `authority.claim` takes it when nobody holds it; `authority.request` asks the
holder (an event every console sees); the holder's `authority.accept key_id=...` hands it
over; `authority.release` gives it up; a flight controller's `authority.take reason=...` takes
it at once from whoever holds it, the reason logged. Every change is an `authority.changed`
event; `authority.status` says who holds what. The holders are kept across restarts; a
damaged file is started afresh with nobody holding authority (commands wait for a claim).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from firmware_host.commands.dispatcher import Outcome, Status, signature_of
from firmware_host.events import EventBus
from firmware_host.storage import open_or_recover
from protocols.ground import KEY_ID_MAX, PERMISSIONS, CommandRequest, CommandSignature, Role
from protocols.messages.common import Severity

Mode = Literal["off", "node", "role"]
REQUEST_KEEP_S = 600.0  # an unanswered request lapses after this
NODE_SCOPE = "node"

MIGRATIONS = [
    """
    CREATE TABLE holders (
        scope TEXT PRIMARY KEY, key_id TEXT NOT NULL, role TEXT NOT NULL, since REAL NOT NULL,
        by_key TEXT NOT NULL, reason TEXT NOT NULL
    );
    """
]


class NoArgs(msgspec.Struct, forbid_unknown_fields=True):
    pass


class RequestArgs(msgspec.Struct, forbid_unknown_fields=True):
    note: Annotated[str, msgspec.Meta(max_length=200)] = ""


class AcceptArgs(msgspec.Struct, forbid_unknown_fields=True):
    key_id: Annotated[str, msgspec.Meta(min_length=1, max_length=KEY_ID_MAX)]


class TakeArgs(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(min_length=3, max_length=200)]
    role: Role | None = None  # "role" mode: whose authority (default: the taker's own role)


COMMANDS: dict[str, tuple[type[msgspec.Struct], str]] = {
    "authority.status": (NoArgs, "Who holds command authority, and who asked for it."),
    "authority.claim": (NoArgs, "Take command authority while nobody holds it."),
    "authority.request": (RequestArgs, "Ask the holder of command authority to hand it over."),
    "authority.accept": (AcceptArgs, "Hand your command authority to a console that asked."),
    "authority.release": (NoArgs, "Give up command authority: nobody holds it then."),
    "authority.take": (
        TakeArgs,
        "Flight controllers: take command authority at once, with a reason (logged).",
    ),
}
ALWAYS_ALLOWED = (PERMISSIONS[Role.MONITOR] or frozenset()) | {
    "command.cancel",
    "keys.revoke",
    *COMMANDS,
}


@dataclass(frozen=True)
class Holder:
    key_id: str
    role: str
    since: float
    by_key: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "role": self.role, "since": self.since,
                "by": self.by_key, "reason": self.reason}  # fmt: skip


@dataclass(frozen=True)
class Request:
    key_id: str
    role: str
    at: float
    note: str


class CommandAuthority:
    """The intake's gate (`CommandIntake(gate=...)`): refuses, and runs the authority commands."""

    def __init__(
        self, mode: Mode, db_path: Path, bus: EventBus, clock: Callable[[], float] = time.time
    ) -> None:
        self.mode = mode
        # derived once: the intake looks each command it takes up in them (deriving: 425 us)
        self._signatures = (
            {}
            if mode == "off"
            else {n: signature_of(doc, args) for n, (args, doc) in COMMANDS.items()}
        )
        self.bus = bus
        self.clock = clock
        self.db, self.recovery = open_or_recover(db_path, MIGRATIONS)
        self.holders = {
            scope: Holder(key_id, role, since, by_key, reason)
            for scope, key_id, role, since, by_key, reason in self.db.execute(
                "SELECT scope, key_id, role, since, by_key, reason FROM holders"
            )
        }
        self.requests: dict[str, dict[str, Request]] = {}  # scope -> key id -> request

    def close(self) -> None:
        self.db.close()

    def signatures(self) -> dict[str, CommandSignature]:
        return dict(self._signatures)

    def handles(self, name: str) -> bool:
        return self.mode != "off" and name in COMMANDS

    def scope(self, role: str) -> str:
        return role if self.mode == "role" else NODE_SCOPE

    def refusal(self, request: CommandRequest) -> str:
        """Why this key may not send this command now ("" if it may)."""
        if self.mode == "off" or request.name in ALWAYS_ALLOWED:
            return ""
        scope = self.scope(request.role.value)
        holder = self.holders.get(scope)
        whose = "" if scope == NODE_SCOPE else f" for role {scope}"
        if holder is None:
            return (f"no console holds command authority{whose}: send authority.claim first "
                    "(read-only until then)")  # fmt: skip
        if holder.key_id != request.key_id:
            return (f"command authority{whose} is held by {holder.key_id!r} ({holder.role}): "
                    "read-only; ask for it with authority.request")  # fmt: skip
        return ""

    def execute(self, request: CommandRequest) -> Outcome:
        args_type, _ = COMMANDS[request.name]
        try:
            args = msgspec.convert(request.args, type=args_type)
        except msgspec.ValidationError as exc:
            return Outcome(Status.REJECTED, f"{request.name}: {exc}")
        scope = self.scope(request.role.value)
        if isinstance(args, TakeArgs) and self.mode == "role" and args.role is not None:
            scope = args.role.value
        self._lapse()
        holder = self.holders.get(scope)
        if request.name == "authority.status":
            return Outcome(Status.OK, "", self.status())
        if request.name == "authority.claim":
            if holder is not None and holder.key_id != request.key_id:
                return Outcome(Status.REJECTED, f"held by {holder.key_id!r} ({holder.role}) "
                               "since it was given; ask with authority.request")  # fmt: skip
            return self._give(scope, request.key_id, request.role.value, request.key_id, "claimed")
        if request.name == "authority.request":
            assert isinstance(args, RequestArgs)
            return self._request(scope, request, holder, args.note)
        if request.name == "authority.accept":
            assert isinstance(args, AcceptArgs)
            if holder is None or holder.key_id != request.key_id:
                return Outcome(Status.REJECTED, "only the holder of command authority hands it "
                               "over")  # fmt: skip
            asked = self.requests.get(scope, {}).get(args.key_id)
            if asked is None:
                return Outcome(Status.REJECTED, f"{args.key_id!r} has not asked for command "
                               "authority (or its request lapsed)")  # fmt: skip
            return self._give(scope, asked.key_id, asked.role, request.key_id, "handed over")
        if request.name == "authority.release":
            if holder is None or holder.key_id != request.key_id:
                return Outcome(Status.REJECTED, "you do not hold command authority")
            return self._give(scope, None, "", request.key_id, "released")
        assert isinstance(args, TakeArgs)  # a flight controller's: PERMISSIONS
        return self._give(scope, request.key_id, request.role.value, request.key_id,
                          f"taken: {args.reason}")  # fmt: skip

    def status(self) -> dict[str, Any]:
        self._lapse()
        return {
            "mode": self.mode,
            "holders": {scope: holder.as_dict() for scope, holder in self.holders.items()},
            "requests": {scope: sorted(asked) for scope, asked in self.requests.items() if asked},
        }

    def _request(
        self, scope: str, request: CommandRequest, holder: Holder | None, note: str
    ) -> Outcome:
        if holder is None:
            return Outcome(Status.REJECTED, "nobody holds command authority: send "
                           "authority.claim")  # fmt: skip
        if holder.key_id == request.key_id:
            return Outcome(Status.REJECTED, "you hold command authority already")
        self.requests.setdefault(scope, {})[request.key_id] = Request(
            request.key_id, request.role.value, self.clock(), note
        )
        said = f": {note}" if note else ""
        self.bus.emit(
            "authority.requested",
            Severity.WARNING,
            f"{request.key_id} ({request.role}) asks {holder.key_id} for command authority"
            f"{said}; the holder accepts with authority.accept key_id={request.key_id}",
            source="command-authority",
            scope=scope,
            key_id=request.key_id,
            holder=holder.key_id,
            note=note,
        )
        return Outcome(Status.OK, "", {"asked": holder.key_id, "scope": scope})

    def _give(self, scope: str, key_id: str | None, role: str, by: str, how: str) -> Outcome:
        previous = self.holders.get(scope)
        now = self.clock()
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            if key_id is None:
                self.db.execute("DELETE FROM holders WHERE scope = ?", (scope,))
            else:
                self.db.execute(
                    "INSERT OR REPLACE INTO holders (scope, key_id, role, since, by_key, reason)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (scope, key_id, role, now, by, how),
                )
        if key_id is None:
            self.holders.pop(scope, None)
        else:
            self.holders[scope] = Holder(key_id, role, now, by, how)
            self.requests.get(scope, {}).pop(key_id, None)
        was = previous.key_id if previous else None
        who = key_id or "nobody"
        taken = how.startswith("taken")
        self.bus.emit(
            "authority.changed",
            Severity.WARNING if taken else Severity.INFO,
            f"command authority{'' if scope == NODE_SCOPE else ' for ' + scope}: {who} "
            f"({how} by {by}; was {was or 'nobody'})",
            source="command-authority",
            scope=scope,
            holder=key_id,
            role=role or None,
            previous=was,
            by=by,
            how=how,
        )
        return Outcome(Status.OK, "", {"scope": scope, "holder": key_id, "previous": was})

    def _lapse(self) -> None:
        horizon = self.clock() - REQUEST_KEEP_S
        for asked in self.requests.values():
            for key_id in [k for k, r in asked.items() if r.at < horizon]:
                del asked[key_id]
