"""Command intake: only the right people's commands, each executed once, each answered once.

Checks, in this order, each refusal a result with its reason:
  1. the payload is a well-formed signed command (GROUND.md, "Commands");
  2. its key is known and not revoked, its HMAC-SHA256 signature is right, and the role it
     claims is its key's role;
  3. a command id seen before gets its earlier result again, never a second execution;
  4. it is not issued in the future, not expired, and not valid for longer than allowed;
  5. its counter is above the last one accepted for its key (persisted before execution, so
     a restart does not reopen a replay window);
  6. its role may send it;
  7. a hazardous command is armed, not executed: `confirm` with its id, within the window,
     by a role allowed to send it, executes it.
Only authenticated commands (past step 2) are remembered, so a forged message carrying a real
command id cannot overwrite or replace that command's result.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from firmware_host.commands.dispatcher import (
    CommandRejected,
    CommandSpec,
    Dispatcher,
    Outcome,
    Status,
    current_role,
    signature_of,
)
from firmware_host.events import EventBus
from firmware_host.storage import open_or_recover
from protocols.ground import CommandRequest, Keyring, may_send, signature_valid
from protocols.messages.common import Severity

log = logging.getLogger(__name__)

RESULTS_KEEP_S = 30 * 86400

MIGRATIONS = [
    """
    CREATE TABLE counters (key_id TEXT PRIMARY KEY, last INTEGER NOT NULL);
    CREATE TABLE results (id TEXT PRIMARY KEY, ts REAL NOT NULL, body TEXT NOT NULL);
    CREATE INDEX results_by_age ON results(ts);
    """,
]


class ConfirmArgs(msgspec.Struct, forbid_unknown_fields=True):
    arm_id: str


CONFIRM = signature_of("Execute a hazardous command armed earlier.", ConfirmArgs)


@dataclass
class Armed:
    request: CommandRequest
    expires: float


class CommandIntake:
    def __init__(
        self,
        keyring: Keyring,
        dispatcher: Dispatcher,
        bus: EventBus,
        db_path: Path,
        publish: Callable[[dict[str, Any]], None],
        *,
        clock: Callable[[], float] = time.time,
        max_skew_s: float = 30.0,
        max_lifetime_s: float = 3600.0,
        arm_window_s: float = 60.0,
    ) -> None:
        self.keyring = keyring
        self.dispatcher = dispatcher
        self.bus = bus
        # Damaged: start afresh only if the counters (replay protection) can be kept.
        self.db, self.recovery = open_or_recover(
            db_path, MIGRATIONS, keep=("counters",), refusal=_unreadable_counters(max_lifetime_s)
        )
        self.publish = publish
        self.clock = clock
        self.max_skew_s = max_skew_s
        self.max_lifetime_s = max_lifetime_s
        self.arm_window_s = arm_window_s
        self.armed: dict[str, Armed] = {}
        self._prune_results()

    def close(self) -> None:
        self.db.close()

    async def handle(self, payload: bytes) -> dict[str, Any]:
        """Check, maybe execute, and publish the one result for one command message."""
        try:
            raw = json.loads(payload)
        except ValueError as exc:
            return self._refuse(None, None, f"malformed command: not JSON ({exc})")
        if not isinstance(raw, dict):
            return self._refuse(None, None, "malformed command: not a JSON object")
        command_id = raw.get("id") if isinstance(raw.get("id"), str) else None
        name = raw.get("name") if isinstance(raw.get("name"), str) else None
        try:
            request = msgspec.convert(raw, type=CommandRequest)
        except msgspec.ValidationError as exc:
            return self._refuse(command_id, name, f"malformed command: {exc}")
        refusal = self._authenticate(request, raw)
        if refusal:
            return self._refuse(request.id, request.name, refusal, audit=request)
        earlier = self._earlier_result(request.id)
        if earlier is not None:
            earlier = {**earlier, "duplicate": True}
            self.publish(earlier)
            return earlier
        refusal = self._admit(request)
        if refusal:
            return self._finish(request, Outcome(Status.REJECTED, refusal))
        if request.name == "confirm":
            return await self._confirm(request)
        spec = self._spec(request.name)
        if spec is not None and spec.hazardous_for(request.args):
            return self._arm(request)
        return self._finish(request, await self._execute(request, request.name, request.args))

    # -- checks ----------------------------------------------------------------------------

    def _authenticate(self, request: CommandRequest, raw: dict[str, Any]) -> str:
        key = self.keyring.keys.get(request.key_id)
        if key is None or request.key_id in self.keyring.revoked:
            state = "revoked" if key is not None else "unknown"
            return f"{state} key id {request.key_id!r}"
        if not signature_valid(key.secret_bytes(), raw):
            return f"bad signature for key {request.key_id!r}"
        if request.role is not key.role:
            return f"key {request.key_id!r} belongs to role {key.role}, not {request.role}"
        return ""

    def _admit(self, request: CommandRequest) -> str:
        now = self.clock()
        issued = request.issued_at_ms / 1000
        expires = request.expires_at_ms / 1000
        if issued > now + self.max_skew_s:
            return (
                f"issued {issued - now:.1f} s in the future (clock skew over {self.max_skew_s:g} s)"
            )
        if expires < now:
            return f"expired {now - expires:.1f} s ago"
        if expires - issued > self.max_lifetime_s:
            return f"valid for {expires - issued:.0f} s, longer than {self.max_lifetime_s:g} s"
        last = self.db.execute(
            "SELECT last FROM counters WHERE key_id = ?", (request.key_id,)
        ).fetchone()
        if last is not None and request.counter <= last[0]:
            return (
                f"replayed: counter {request.counter} is not above {last[0]}, the last accepted "
                f"for key {request.key_id!r}"
            )
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT INTO counters (key_id, last) VALUES (?, ?)"
                " ON CONFLICT(key_id) DO UPDATE SET last = excluded.last",
                (request.key_id, request.counter),
            )
        if not may_send(request.role, request.name):
            return f"role {request.role} may not send {request.name!r}"
        return ""

    def _spec(self, name: str) -> CommandSpec[Any] | None:
        try:
            return self.dispatcher.spec(name)
        except CommandRejected:
            return None  # unknown: the dispatcher refuses it with the list of known commands

    # -- hazardous commands ----------------------------------------------------------------

    def _arm(self, request: CommandRequest) -> dict[str, Any]:
        try:
            self.dispatcher.parse_args(request.name, request.args)
        except CommandRejected as exc:
            return self._finish(request, Outcome(Status.REJECTED, str(exc)))
        self._expire_arms()
        self.armed[request.id] = Armed(request, self.clock() + self.arm_window_s)
        self.bus.emit(
            "command.armed",
            Severity.WARNING,
            f"hazardous {request.name} armed by {request.key_id}: confirm within "
            f"{self.arm_window_s:g} s",
            arm_id=request.id,
        )
        reason = f"hazardous: send confirm with arm_id {request.id} within {self.arm_window_s:g} s"
        return self._finish(
            request,
            Outcome(Status.ARMED, reason, {"arm_id": request.id, "window_s": self.arm_window_s}),
        )

    async def _confirm(self, request: CommandRequest) -> dict[str, Any]:
        try:
            args = msgspec.convert(request.args, type=ConfirmArgs)
        except msgspec.ValidationError as exc:
            return self._finish(request, Outcome(Status.REJECTED, f"confirm: {exc}"))
        self._expire_arms()
        armed = self.armed.pop(args.arm_id, None)
        if armed is None:
            reason = f"nothing armed with id {args.arm_id!r} (never armed, expired or done)"
            return self._finish(request, Outcome(Status.REJECTED, reason))
        target = armed.request
        if not may_send(request.role, target.name):
            self.armed[args.arm_id] = armed
            reason = f"role {request.role} may not confirm {target.name!r}"
            return self._finish(request, Outcome(Status.REJECTED, reason))
        outcome = await self._execute(request, target.name, target.args)
        self.bus.emit(
            "command.confirmed",
            Severity.WARNING,
            f"hazardous {target.name} confirmed by {request.key_id}: {outcome.status.value}",
            arm_id=args.arm_id,
        )
        return self._finish(request, outcome, executed=target.name)

    def _expire_arms(self) -> None:
        now = self.clock()
        for arm_id in [a for a, armed in self.armed.items() if armed.expires < now]:
            del self.armed[arm_id]

    # -- execution and results -------------------------------------------------------------

    async def _execute(self, request: CommandRequest, name: str, args: Any) -> Outcome:
        token = current_role.set(request.role)
        try:
            return await self.dispatcher.execute(name, args)
        finally:
            current_role.reset(token)

    def _finish(
        self, request: CommandRequest, outcome: Outcome, *, executed: str | None = None
    ) -> dict[str, Any]:
        body = {
            "id": request.id,
            "name": request.name,
            "role": request.role.value,
            "key_id": request.key_id,
            **outcome.as_dict(),
        }
        if executed:
            body["executed"] = executed
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.execute(
                    "INSERT OR REPLACE INTO results (id, ts, body) VALUES (?, ?, ?)",
                    (request.id, self.clock(), json.dumps(body)),
                )
        finally:
            self.publish(body)  # answered even when the state disk refuses to store it
        return body

    def _refuse(
        self,
        command_id: str | None,
        name: str | None,
        reason: str,
        *,
        audit: CommandRequest | None = None,
    ) -> dict[str, Any]:
        """A refusal before authentication: published, never stored under the command id."""
        body = {"id": command_id, "name": name, "status": Status.REJECTED.value, "reason": reason}
        if audit is not None:
            self.bus.emit(
                "command.refused",
                Severity.WARNING,
                f"refused {name!r} claiming key {audit.key_id!r}: {reason}",
                key_id=audit.key_id,
            )
        self.publish(body)
        return body

    def _earlier_result(self, command_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT body FROM results WHERE id = ?", (command_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def _prune_results(self) -> None:
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.execute(
                    "DELETE FROM results WHERE ts < ?", (self.clock() - RESULTS_KEEP_S,)
                )
        except sqlite3.OperationalError as exc:  # a full state disk: start all the same
            log.warning("commands.db: old results not pruned (%s); next start will", exc)


def _unreadable_counters(max_lifetime_s: float) -> str:
    return (
        "its command counters (replay protection) are unreadable, so the daemon will not start: "
        "commands already executed could run again. To start without them, move the file aside "
        "and restart, after revoking and reissuing every command key (or waiting "
        f"{max_lifetime_s:g} s, the longest a signed command stays valid)"
    )
