"""Command intake: only the right people's commands, each executed once, each answered once.

On receipt (cheap, synchronous, in the MQTT listener):
  1. bounded parsing: size and nesting depth, then JSON (screen.py);
  2. its key is known and not revoked and its HMAC-SHA256 signature is right;
  3. the command schema, integers within what SQLite stores, and the role it claims is its
     key's role.
A message failing either is counted and summarised (refusals.py), never answered: its id is
the sender's choice. An authenticated command goes into a lane of a priority queue: cancels
and revocations first, then fresh commands, then repeats (a counter not above the last one
accepted: a retry or a replay), each lane bounded. Forged traffic never enters the queue, so
it cannot delay an authenticated command. The priority topic (its own broker connection, so a
flood on the command topic cannot hold it up at the broker either) takes flight controllers'
commands only, into the first lane. A command that arrives late (issued more than
LATE_AFTER_S before it came: it waited at a broker while the node or the link was down) waits
LATE_SETTLE_S before it may run, so a cancel sent after it, delivered in the same burst,
overtakes it.

The worker then takes one command at a time and checks, each refusal a result with its reason:
  4. its key is still trusted (a revocation may have come in meanwhile);
  5. a command id seen before gets its earlier result again, never a second execution;
  6. it has not been cancelled (`command.cancel`, remembered across restarts);
  7. it is not issued in the future, not past its not_after (`expires_at_ms`), and not valid
     for longer than allowed; this is checked as it is about to run, so a command that waited
     in the queue, or at the broker while the node was down, never runs late;
  8. its counter is above the last one accepted for its key (persisted before execution, so
     a restart does not reopen a replay window);
  9. it is a command this node knows;
 10. its role may send it;
     then, where configured, the gate's word: command authority (authority.py);
 11. a hazardous command is armed, not executed: `confirm` with its id, before the arm
     expires (the arm window, and never past the armed command's not_after), by a role
     allowed to send it (and, where the two-person rule applies, by another key or role),
     executes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

import msgspec

from firmware_host.commands.dispatcher import (
    CommandRejected,
    Dispatcher,
    Outcome,
    Status,
    current_role,
    signature_of,
)
from firmware_host.events import EventBus
from firmware_host.groundlink.refusals import RefusalTally
from firmware_host.groundlink.screen import Malformed, decode_fields, typed
from firmware_host.storage import open_or_recover
from firmware_host.storage_guard import StorageFault, StorageGuard
from protocols.ground import (
    KEY_ID_MAX,
    CommandRequest,
    CommandSignature,
    KeyFileError,
    Keyring,
    Millis,
    Role,
    may_send,
    signature_valid,
)
from protocols.messages.common import Severity

log = logging.getLogger(__name__)

RESULTS_KEEP_S = 30 * 86400

MIGRATIONS = [
    """
    CREATE TABLE counters (key_id TEXT PRIMARY KEY, last INTEGER NOT NULL);
    CREATE TABLE results (id TEXT PRIMARY KEY, ts REAL NOT NULL, body TEXT NOT NULL);
    CREATE INDEX results_by_age ON results(ts);
    """,
    """
    CREATE TABLE cancelled (
        id TEXT PRIMARY KEY, by_key TEXT NOT NULL, any_sender INTEGER NOT NULL,
        keep_until REAL NOT NULL
    );
    CREATE TABLE revoked_keys (key_id TEXT PRIMARY KEY, ts REAL NOT NULL, by_key TEXT NOT NULL);
    """,
]

# What a damaged commands.db must not lose: replay counters, cancellations, revocations.
KEPT_ON_RECOVERY = ("counters", "cancelled", "revoked_keys")

TwoPersonRule = Literal["key", "role"]  # the confirming key must differ; or its role too

CommandId = Annotated[str, msgspec.Meta(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class ConfirmArgs(msgspec.Struct, forbid_unknown_fields=True):
    arm_id: CommandId


class CancelArgs(msgspec.Struct, forbid_unknown_fields=True):
    id: CommandId
    not_after_ms: Millis | None = None  # the cancelled command's, if known: how long to remember


class RevokeArgs(msgspec.Struct, forbid_unknown_fields=True):
    key_id: Annotated[str, msgspec.Meta(min_length=1, max_length=KEY_ID_MAX)]


CONFIRM = signature_of("Execute a hazardous command armed earlier.", ConfirmArgs)
CANCEL = signature_of(
    "Withdraw a command not yet executed (queued, armed, or not yet received): it never runs. "
    "Your own commands; a flight controller may cancel anyone's.",
    CancelArgs,
)
REVOKE = signature_of(
    "Revoke a key at once, for good (kept across restarts); its armed commands are disarmed.",
    RevokeArgs,
)
INTAKE_COMMANDS: dict[str, CommandSignature] = {
    "confirm": CONFIRM,
    "command.cancel": CANCEL,
    "keys.revoke": REVOKE,
}

# Lanes of the queue, first served first; each bounded (beyond, a message is counted and
# dropped unanswered, like forged traffic). URGENT also takes the priority topic's commands.
URGENT, FRESH, REPEAT = 0, 1, 2
URGENT_COMMANDS = frozenset({"command.cancel", "keys.revoke"})
LANE_LIMITS = {URGENT: 64, FRESH: 256, REPEAT: 32}
LATE_AFTER_S = 2.0
LATE_SETTLE_S = 1.0


class CommandGate(Protocol):
    """A policy the worker consults after its own checks (command authority: authority.py):
    it may refuse a command, and it runs the commands it adds."""

    def signatures(self) -> dict[str, CommandSignature]: ...
    def handles(self, name: str) -> bool: ...
    def refusal(self, request: CommandRequest) -> str: ...
    def execute(self, request: CommandRequest) -> Outcome: ...


@dataclass(order=True)
class Queued:
    lane: int
    order: int
    request: CommandRequest = field(compare=False)
    runnable_at: float = field(compare=False)  # a late arrival waits for what came behind it


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
        two_person: Mapping[str, TwoPersonRule] | None = None,
        load_keyring: Callable[[], Keyring] | None = None,
        refusal_summary_s: float = 10.0,
        guard: StorageGuard | None = None,
        gate: CommandGate | None = None,
    ) -> None:
        self.gate = gate
        self.keyring = keyring
        self.dispatcher = dispatcher
        self.bus = bus
        self.guard = guard
        self.db_path = db_path
        # Damaged: start afresh only if what stops replays (KEPT_ON_RECOVERY) can be kept.
        self.db, self.recovery = open_or_recover(
            db_path, MIGRATIONS, keep=KEPT_ON_RECOVERY, refusal=_unreadable_counters(max_lifetime_s)
        )
        self.publish = publish
        self.clock = clock
        self.max_skew_s = max_skew_s
        self.max_lifetime_s = max_lifetime_s
        self.arm_window_s = arm_window_s
        self.two_person = dict(two_person or {})
        self.load_keyring = load_keyring
        self.refusals = RefusalTally(bus, clock, period_s=refusal_summary_s)
        self.errors = 0  # messages whose handling raised: answered "failed", the task went on
        self._answered: str | None = None  # the id of the last result published
        self.armed: dict[str, Armed] = {}
        self._heap: list[Queued] = []  # the queue: lane first, then arrival order
        self._arrived = asyncio.Event()
        self._in_lane: Counter[int] = Counter()
        self._order = itertools.count()
        self._queued: dict[str, str] = {}  # id -> key id of every command waiting in the queue
        self._latest: dict[str, int] = dict(self.db.execute("SELECT key_id, last FROM counters"))
        self.revoked = self._effective_revocations()
        self._prune()

    def close(self) -> None:
        self.db.close()

    def signatures(self) -> dict[str, CommandSignature]:
        """The commands the intake handles itself (the dispatcher lists the rest)."""
        return {**INTAKE_COMMANDS, **(self.gate.signatures() if self.gate else {})}

    # -- receipt: cheap, synchronous, never raises --------------------------------------------

    def receive(self, payload: bytes, *, priority: bool = False) -> None:
        """Screen and authenticate one message; queue it if authentic, else count it.

        `priority`: it came on the priority topic, which only a flight controller may use.
        """
        try:
            self._receive(payload, priority)
        except Exception as exc:  # outside input must never stop the listener
            self.errors += 1
            log.exception("command intake: receiving a message failed")
            self.refusals.refuse(f"internal error on receipt: {type(exc).__name__}")

    def _receive(self, payload: bytes, priority: bool) -> None:
        try:
            raw = decode_fields(payload)
            refusal = self._authenticate(raw)  # before the schema: forgeries cost the least
            request = None if refusal else typed(raw)
        except Malformed as exc:
            self.refusals.refuse(str(exc))
            return
        if request is None:
            self.refusals.refuse(refusal)
            return
        key = self.keyring.keys[request.key_id]
        if request.role is not key.role:
            self.refusals.refuse(
                f"key {request.key_id!r} belongs to role {key.role}, not {request.role}"
            )
            return
        if priority and key.role is not Role.FLIGHT_CONTROLLER:
            self.refusals.refuse(
                f"key {request.key_id!r} ({key.role}) on the priority topic: flight "
                "controllers only"
            )
            return
        now = self.clock()
        late = (
            request.name not in URGENT_COMMANDS and now - request.issued_at_ms / 1000 > LATE_AFTER_S
        )
        # A late priority command settles behind the cancels of the same burst like any other.
        if request.name in URGENT_COMMANDS or (priority and not late):
            lane = URGENT
        elif request.counter <= self._latest.get(request.key_id, -1):
            lane = REPEAT
        else:
            lane = FRESH
        if self._in_lane[lane] >= LANE_LIMITS[lane]:
            self.refusals.refuse(f"command queue full: dropped {request.name!r} from "
                                 f"{request.key_id!r}")  # fmt: skip
            return
        self._in_lane[lane] += 1
        self._queued[request.id] = request.key_id
        heapq.heappush(
            self._heap,
            Queued(lane, next(self._order), request, now + LATE_SETTLE_S if late else now),
        )
        self._arrived.set()

    @property
    def waiting(self) -> int:
        """Authenticated commands waiting for the worker."""
        return len(self._heap)

    def _authenticate(self, raw: dict[str, Any]) -> str:
        """Why the message is not signed by a trusted key ("" if it is)."""
        key_id = raw.get("key_id")
        if not isinstance(key_id, str) or not 0 < len(key_id) <= KEY_ID_MAX:
            return f"malformed command: key_id missing, or not text of 1 to {KEY_ID_MAX} characters"
        key = self.keyring.keys.get(key_id)
        if key is None or key_id in self.revoked:
            state = "revoked" if key is not None else "unknown"
            return f"{state} key id {key_id!r}"
        if not signature_valid(key.secret_bytes(), raw):
            return f"bad signature for key {key_id!r}"
        return ""

    # -- the worker: one command at a time ------------------------------------------------------

    async def process_next(self, timeout: float) -> bool:
        """Handle the next queued command, waiting up to `timeout`; False if none came.

        Whatever handling one command raises is counted, reported as an event and answered
        "failed"; the caller's loop carries on.
        """
        self.refusals.flush_due()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            hold = self._heap[0].runnable_at - self.clock() if self._heap else math.inf
            if hold <= 0:
                break
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), min(hold, remaining))
        item = heapq.heappop(self._heap)
        self._in_lane[item.lane] -= 1
        self._queued.pop(item.request.id, None)
        try:
            with self._storage():
                await self._handle(item.request)
        except StorageFault as fault:  # answered all the same, and never run later
            if self._answered != item.request.id:
                reason = f"refused: the state disk refused a write ({fault}); not executed"
                self.publish(self._body(item.request, Outcome(Status.REJECTED, reason)))
        except Exception as exc:  # one command must never stop the intake
            self._crashed(item.request, exc)
        return True

    def _storage(self) -> contextlib.AbstractContextManager[None]:
        """The guard over commands.db's writes: a full or failing disk becomes StorageFault."""
        if self.guard is None:
            return contextlib.nullcontext()
        return self.guard.using(self.db_path, self.db)

    def _crashed(self, request: CommandRequest, exc: Exception) -> None:
        self.errors += 1
        log.exception("command %s (%s) crashed the intake", request.name, request.id)
        reason = f"{request.name} could not be handled: {type(exc).__name__}: {exc}"[:300]
        self.bus.emit(
            "command.error",
            Severity.CRITICAL,
            f"{reason}; command intake carries on ({self.errors} such errors since start)",
            source="command-intake",
            id=request.id,
            key_id=request.key_id,
            errors=self.errors,
        )
        try:
            self.publish(self._body(request, Outcome(Status.FAILED, reason)))
        except Exception:  # the event above already says what happened
            log.exception("command %s: the failure result could not be published", request.id)

    async def _handle(self, request: CommandRequest) -> dict[str, Any]:
        if request.key_id in self.revoked or request.key_id not in self.keyring.keys:
            reason = f"key {request.key_id!r} was revoked while the command waited"
            return self._finish(request, Outcome(Status.REJECTED, reason))
        earlier = self._earlier_result(request.id)
        if earlier is not None:
            earlier = {**earlier, "duplicate": True}
            self.publish(earlier)
            return earlier
        refusal = self._admit(request)
        if refusal:
            return self._finish(request, Outcome(Status.REJECTED, refusal))
        if self.gate is not None:
            refusal = self.gate.refusal(request)
            if refusal:
                return self._finish(request, Outcome(Status.REJECTED, refusal))
            if self.gate.handles(request.name):
                return self._finish(request, self.gate.execute(request))
        if request.name == "confirm":
            return await self._confirm(request)
        if request.name == "command.cancel":
            return self._finish(request, self._cancel(request))
        if request.name == "keys.revoke":
            return self._finish(request, self._revoke(request))
        if self.dispatcher.spec(request.name).hazardous_for(request.args):
            return self._arm(request)
        return self._finish(request, await self._execute(request, request.name, request.args))

    # -- checks ----------------------------------------------------------------------------

    def _admit(self, request: CommandRequest) -> str:
        now = self.clock()
        cancelled = self.db.execute(
            "SELECT by_key, any_sender FROM cancelled WHERE id = ?", (request.id,)
        ).fetchone()
        if cancelled is not None and (cancelled[1] or cancelled[0] == request.key_id):
            return f"cancelled by {cancelled[0]!r} before it ran"
        issued = request.issued_at_ms / 1000
        expires = request.expires_at_ms / 1000
        if issued > now + self.max_skew_s:
            return (
                f"issued {issued - now:.1f} s in the future (clock skew over {self.max_skew_s:g} s)"
            )
        if expires < now:
            return f"expired {now - expires:.1f} s ago (its not_after): not executed"
        if expires - issued > self.max_lifetime_s:
            return f"valid for {expires - issued:.0f} s, longer than {self.max_lifetime_s:g} s"
        last = self._latest.get(request.key_id)
        if last is not None and request.counter <= last:
            return (
                f"replayed: counter {request.counter} is not above {last}, the last accepted "
                f"for key {request.key_id!r}"
            )
        if request.name not in URGENT_COMMANDS:
            # Cancels and revocations jump the queue: they must not make the commands they
            # overtook look like replays, and a replay of one is harmless (idempotent).
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.execute(
                    "INSERT INTO counters (key_id, last) VALUES (?, ?)"
                    " ON CONFLICT(key_id) DO UPDATE SET last = excluded.last",
                    (request.key_id, request.counter),
                )
            self._latest[request.key_id] = request.counter
        if request.name not in self.signatures():
            try:
                self.dispatcher.spec(request.name)
            except CommandRejected:
                known = ", ".join(sorted([*self.dispatcher.signatures(), *self.signatures()]))
                return f"unknown command {request.name!r}; known: {known}"
        if not may_send(request.role, request.name):
            return f"role {request.role} may not send {request.name!r}"
        return ""

    # -- hazardous commands ----------------------------------------------------------------

    def _arm(self, request: CommandRequest) -> dict[str, Any]:
        try:
            self.dispatcher.parse_args(request.name, request.args)
        except CommandRejected as exc:
            return self._finish(request, Outcome(Status.REJECTED, str(exc)))
        self._expire_arms()
        now = self.clock()
        expires = min(now + self.arm_window_s, request.expires_at_ms / 1000)
        window = round(expires - now, 3)
        self.armed[request.id] = Armed(request, expires)
        rule = self.two_person.get(request.name)
        who = {"key": "another key than", "role": "another key and role than"}.get(rule or "", "")
        by = f" from {who} {request.key_id} ({request.role})" if who else ""
        self.bus.emit(
            "command.armed",
            Severity.WARNING,
            f"hazardous {request.name} armed by {request.key_id} ({request.role}): confirm "
            f"within {window:g} s{by}",
            source="command-intake",
            arm_id=request.id,
            command=request.name,
            args=request.args,
            armed_by=request.key_id,
            armed_role=request.role.value,
            two_person=rule,
            expires=expires,
        )
        reason = f"hazardous: send confirm with arm_id {request.id} within {window:g} s{by}"
        result = {
            "arm_id": request.id,
            "window_s": window,
            "armed_by": request.key_id,
            "armed_role": request.role.value,
            "two_person": rule,
        }
        return self._finish(request, Outcome(Status.ARMED, reason, result))

    async def _confirm(self, request: CommandRequest) -> dict[str, Any]:
        try:
            args = msgspec.convert(request.args, type=ConfirmArgs)
        except msgspec.ValidationError as exc:
            return self._finish(request, Outcome(Status.REJECTED, f"confirm: {exc}"))
        self._expire_arms()
        armed = self.armed.get(args.arm_id)
        if armed is None:
            reason = (
                f"nothing armed with id {args.arm_id!r} (never armed, expired, cancelled or done)"
            )
            return self._finish(request, Outcome(Status.REJECTED, reason))
        target = armed.request
        refusal = self._may_confirm(request, target)
        if refusal:
            return self._finish(request, Outcome(Status.REJECTED, refusal))
        del self.armed[args.arm_id]
        outcome = await self._execute(request, target.name, target.args)
        self.bus.emit(
            "command.confirmed",
            Severity.WARNING,
            f"hazardous {target.name} armed by {target.key_id}, confirmed by {request.key_id}: "
            f"{outcome.status.value}",
            source="command-intake",
            arm_id=args.arm_id,
            armed_by=target.key_id,
            confirmed_by=request.key_id,
        )
        return self._finish(request, outcome, executed=target.name, armed_by=target.key_id)

    def _may_confirm(self, request: CommandRequest, target: CommandRequest) -> str:
        if not may_send(request.role, target.name):
            return f"role {request.role} may not confirm {target.name!r}"
        rule = self.two_person.get(target.name)
        if rule is not None and request.key_id == target.key_id:
            return (
                f"two-person rule: {target.name} armed by {target.key_id!r} must be confirmed "
                "by another key"
            )
        if rule == "role" and request.role is target.role:
            return (
                f"two-person rule: {target.name} armed by role {target.role} must be confirmed "
                "by another role"
            )
        return ""

    def _expire_arms(self) -> None:
        now = self.clock()
        self._disarm(lambda armed: armed.expires < now)

    def _disarm(self, which: Callable[[Armed], bool]) -> list[str]:
        gone = [arm_id for arm_id, armed in self.armed.items() if which(armed)]
        for arm_id in gone:
            del self.armed[arm_id]
        return gone

    # -- cancel and revoke -------------------------------------------------------------------

    def _cancel(self, request: CommandRequest) -> Outcome:
        try:
            args = msgspec.convert(request.args, type=CancelArgs)
        except msgspec.ValidationError as exc:
            return Outcome(Status.REJECTED, f"command.cancel: {exc}")
        anyone = request.role is Role.FLIGHT_CONTROLLER
        armed = self.armed.get(args.id)
        owner = armed.request.key_id if armed is not None else self._queued.get(args.id)
        if owner is not None and owner != request.key_id and not anyone:
            return Outcome(
                Status.REJECTED,
                f"{args.id} was sent by {owner!r}: only that key or a flight controller may "
                "cancel it",
            )
        if armed is not None:
            del self.armed[args.id]
            self.bus.emit(
                "command.disarmed",
                Severity.WARNING,
                f"armed {armed.request.name} {args.id} cancelled by {request.key_id}",
                source="command-intake",
                arm_id=args.id,
                by=request.key_id,
            )
            return Outcome(Status.OK, "", {"cancelled": args.id, "was": "armed"})
        earlier = self._earlier_result(args.id)
        if earlier is not None:
            return Outcome(
                Status.REJECTED, f"{args.id} was already answered: {earlier.get('status')}"
            )
        now = self.clock()
        longest = now + self.max_skew_s + self.max_lifetime_s  # no command is valid longer
        keep_until = longest
        if args.not_after_ms is not None:
            keep_until = min(args.not_after_ms / 1000, longest)
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT OR REPLACE INTO cancelled (id, by_key, any_sender, keep_until)"
                " VALUES (?, ?, ?, ?)",
                (args.id, request.key_id, int(anyone), keep_until),
            )
            self.db.execute("DELETE FROM cancelled WHERE keep_until < ?", (now,))
        was = "queued" if owner is not None else "not received yet"
        return Outcome(Status.OK, "", {"cancelled": args.id, "was": was, "kept_until": keep_until})

    def _revoke(self, request: CommandRequest) -> Outcome:
        try:
            args = msgspec.convert(request.args, type=RevokeArgs)
        except msgspec.ValidationError as exc:
            return Outcome(Status.REJECTED, f"keys.revoke: {exc}")
        if args.key_id not in self.keyring.keys:
            return Outcome(Status.REJECTED, f"keys.revoke: no key id {args.key_id!r}")
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT OR IGNORE INTO revoked_keys (key_id, ts, by_key) VALUES (?, ?, ?)",
                (args.key_id, self.clock(), request.key_id),
            )
        self.revoked.add(args.key_id)
        disarmed = self._disarm(lambda armed: armed.request.key_id == args.key_id)
        self.bus.emit(
            "keys.revoked",
            Severity.WARNING,
            f"key {args.key_id!r} revoked by {request.key_id}; {len(disarmed)} armed command(s) "
            "disarmed",
            source="command-intake",
            key_id=args.key_id,
            by=request.key_id,
            disarmed=disarmed,
        )
        return Outcome(Status.OK, "", {"revoked": args.key_id, "disarmed": disarmed})

    def reload_keyring(self) -> None:
        """Re-read the keyring (SIGHUP): removed or revoked keys lose their arms at once."""
        if self.load_keyring is None:
            return
        try:
            keyring = self.load_keyring()
        except KeyFileError as exc:
            self.bus.emit(
                "keys.reload_failed",
                Severity.CRITICAL,
                f"keyring not reloaded, the previous one stays in force: {exc}",
                source="command-intake",
            )
            return
        self.keyring = keyring
        self.revoked = self._effective_revocations()
        disarmed = self._disarm(
            lambda armed: (
                armed.request.key_id in self.revoked or armed.request.key_id not in keyring.keys
            )
        )
        self.bus.emit(
            "keys.reloaded",
            Severity.INFO,
            f"keyring re-read: {len(keyring.keys)} keys, {len(self.revoked)} revoked; "
            f"{len(disarmed)} armed command(s) disarmed",
            source="command-intake",
            disarmed=disarmed,
        )

    def _effective_revocations(self) -> set[str]:
        """The keyring's revocations and those sent by command (kept in commands.db)."""
        stored = {row[0] for row in self.db.execute("SELECT key_id FROM revoked_keys")}
        return set(self.keyring.revoked) | stored

    # -- execution and results -------------------------------------------------------------

    async def _execute(self, request: CommandRequest, name: str, args: Any) -> Outcome:
        token = current_role.set(request.role)
        try:
            return await self.dispatcher.execute(name, args)
        finally:
            current_role.reset(token)

    def _body(
        self,
        request: CommandRequest,
        outcome: Outcome,
        *,
        executed: str | None = None,
        armed_by: str | None = None,
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
        if armed_by:
            body["armed_by"] = armed_by
        return body

    def _finish(
        self,
        request: CommandRequest,
        outcome: Outcome,
        *,
        executed: str | None = None,
        armed_by: str | None = None,
    ) -> dict[str, Any]:
        body = self._body(request, outcome, executed=executed, armed_by=armed_by)
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.execute(
                    "INSERT OR REPLACE INTO results (id, ts, body) VALUES (?, ?, ?)",
                    (request.id, self.clock(), msgspec.json.encode(body).decode()),  # typed too
                )
        finally:
            self.publish(body)  # answered even when the state disk refuses to store it
            self._answered = request.id
        return body

    def _earlier_result(self, command_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT body FROM results WHERE id = ?", (command_id,)).fetchone()
        return msgspec.json.decode(row[0]) if row else None

    def _prune(self) -> None:
        now = self.clock()
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.execute("DELETE FROM results WHERE ts < ?", (now - RESULTS_KEEP_S,))
                self.db.execute("DELETE FROM cancelled WHERE keep_until < ?", (now,))
        except sqlite3.OperationalError as exc:  # a full state disk: start all the same
            log.warning("commands.db: old results not pruned (%s); next start will", exc)


def _unreadable_counters(max_lifetime_s: float) -> str:
    return (
        "its command counters, cancellations or key revocations are unreadable, so the daemon "
        "will not start: commands already executed, cancelled or revoked could run again. To "
        "start without them, move the file aside and restart, after revoking and reissuing "
        "every command key (or waiting "
        f"{max_lifetime_s:g} s, the longest a signed command stays valid)"
    )
