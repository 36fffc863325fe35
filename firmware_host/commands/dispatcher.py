"""The command dispatcher every operator command goes through, whoever sends it.

A command is a name and a JSON object of arguments. Arguments are converted to the
command's typed schema (errors name the argument), then the handler runs. The outcome is
always one of: ok (with a result), rejected (not executed; reason says why) or failed
(attempted; reason says what went wrong).
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import msgspec
import msgspec.inspect as mi

from protocols.ground import Argument, CommandSignature, Role

log = logging.getLogger(__name__)

A = TypeVar("A", bound=msgspec.Struct)


# The role on whose authority the current command runs (sequences check their steps with it).
current_role: contextvars.ContextVar[Role | None] = contextvars.ContextVar(
    "current_role", default=None
)


class Status(enum.StrEnum):
    OK = "ok"
    REJECTED = "rejected"  # refused before anything was done
    FAILED = "failed"  # tried, did not (fully) happen
    ARMED = "armed"  # hazardous: waiting for its confirmation
    DUPLICATE = "duplicate"  # this command id was already executed; its result is attached


class CommandRejected(Exception):
    """Refused before execution: bad arguments, unknown target, policy, budget."""


class CommandFailed(Exception):
    """Execution was attempted and did not succeed."""


@dataclass(frozen=True)
class Outcome:
    status: Status
    reason: str = ""
    result: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "reason": self.reason, "result": self.result}


@dataclass(frozen=True)
class CommandSpec(Generic[A]):
    name: str
    args: type[A]
    run: Callable[[A], Awaitable[dict[str, Any]]]
    doc: str
    # Hazardous commands need arm-then-confirm; a predicate makes it depend on the arguments
    # (raising the power cap is hazardous, lowering it is not).
    hazardous: bool | Callable[[dict[str, Any]], bool] = False

    def hazardous_for(self, args: dict[str, Any]) -> bool:
        return self.hazardous(args) if callable(self.hazardous) else self.hazardous


def _json_types(info: mi.Type) -> list[str]:
    """The JSON types msgspec converts into `info` (an integer also passes as a number)."""
    match info:
        case mi.Metadata():
            return _json_types(info.type)
        case mi.UnionType():
            return [t for member in info.types for t in _json_types(member)]
        case mi.LiteralType():
            return sorted({"string" if isinstance(v, str) else "integer" for v in info.values})
        case mi.EnumType():
            return sorted({"string" if isinstance(m.value, str) else "integer" for m in info.cls})
        case mi.StrType():
            return ["string"]
        case mi.BoolType():
            return ["boolean"]
        case mi.IntType():
            return ["integer"]
        case mi.FloatType():
            return ["number"]
        case mi.NoneType():
            return ["null"]
        case mi.ListType() | mi.VarTupleType() | mi.TupleType() | mi.SetType():
            return ["array"]
        case _:
            return ["object"]


def signature_of(doc: str, args: type[msgspec.Struct], hazardous: bool = False) -> CommandSignature:
    info = mi.type_info(args)
    assert isinstance(info, mi.StructType)
    return CommandSignature(
        doc,
        {f.encode_name: Argument(_json_types(f.type), f.required) for f in info.fields},
        hazardous,
    )


class Dispatcher:
    def __init__(self, *, timeout_s: float = 30.0) -> None:
        self._specs: dict[str, CommandSpec[Any]] = {}
        self._signatures: dict[str, CommandSignature] | None = None  # built once all are in
        self.timeout_s = timeout_s

    def register(self, spec: CommandSpec[Any]) -> None:
        if spec.name in self._specs:
            raise ValueError(f"command {spec.name!r} registered twice")
        self._specs[spec.name] = spec
        self._signatures = None

    def spec(self, name: str) -> CommandSpec[Any]:
        try:
            return self._specs[name]
        except KeyError:
            known = ", ".join(sorted(self._specs))
            raise CommandRejected(f"unknown command {name!r}; known: {known}") from None

    def signatures(self) -> dict[str, CommandSignature]:
        """Every command's signature, derived once: every birth certificate carries them all,
        and deriving them from the argument types took 2 ms (28 commands) at each."""
        if self._signatures is None:
            self._signatures = {
                name: signature_of(spec.doc, spec.args, hazardous=spec.hazardous is not False)
                for name, spec in self._specs.items()
            }
        return dict(self._signatures)

    def parse_args(self, name: str, args: Any) -> Any:
        spec = self.spec(name)
        try:
            return msgspec.convert(args if args is not None else {}, type=spec.args)
        except msgspec.ValidationError as exc:
            raise CommandRejected(f"{name}: {exc}") from exc

    async def execute(self, name: str, args: Any) -> Outcome:
        try:
            parsed = self.parse_args(name, args)
            async with asyncio.timeout(self.timeout_s):
                result = await self._specs[name].run(parsed)
        except TimeoutError:
            return Outcome(Status.FAILED, f"{name} did not finish within {self.timeout_s:g} s")
        except CommandRejected as exc:
            return Outcome(Status.REJECTED, str(exc))
        except CommandFailed as exc:
            return Outcome(Status.FAILED, str(exc))
        except Exception as exc:
            log.exception("command %s crashed", name)
            return Outcome(Status.FAILED, f"{name} failed unexpectedly: {exc!r}")
        return Outcome(Status.OK, "", result)
