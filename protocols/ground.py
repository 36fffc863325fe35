"""The ground link on MQTT: topic namespace and JSON envelopes (documented in GROUND.md).

Session semantics follow Sparkplug B: a birth certificate with the full state on every
connect, a death certificate as the MQTT Last Will, a birth/death sequence (bd_seq) tying
the two together, and a sequence number on every stream message so the ground can detect
gaps and drop duplicates.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import json
from pathlib import Path
from typing import Annotated, Any

import msgspec

SCHEMA_VERSION = 1
ROOT = "cupola/v1"

# Leaves under cupola/v1/<node>/
BIRTH = "birth"  # retained: the full state, published on every connect
DEATH = "death"  # retained: the Last Will (or a clean shutdown)
STATE = "state"  # state/<device>, retained: latest snapshot of one device
EVENT = "event"  # stream: events, in order, sequence-numbered
TELEMETRY = "telemetry"  # stream: periodic samples
RESULT = "result"  # stream: one result per command
COMMAND = "cmd"  # ground -> node: signed command requests

STREAM_KINDS = (EVENT, TELEMETRY, RESULT)


def topic(node: str, leaf: str, *rest: str) -> str:
    return "/".join((ROOT, node, leaf, *rest))


def parse_topic(name: str) -> tuple[str, str, tuple[str, ...]] | None:
    """(node, leaf, rest) of a Cupola topic, or None for anything else."""
    parts = name.split("/")
    if len(parts) < 4 or "/".join(parts[:2]) != ROOT:
        return None
    return parts[2], parts[3], tuple(parts[4:])


class Envelope(msgspec.Struct, omit_defaults=True):
    """What every message from the node carries around its body."""

    v: int
    node: str
    kind: str
    ts: float
    body: dict[str, Any]
    seq: int | None = None  # stream messages: contiguous per node, never reused
    bd_seq: int | None = None  # birth and death: the session they belong to
    historical: bool = False  # queued before the session that delivered it began


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Envelope)


def encode(envelope: Envelope) -> bytes:
    return _encoder.encode(envelope)


def decode(payload: bytes) -> Envelope:
    """Parse a node message; raises msgspec.DecodeError or msgspec.ValidationError."""
    return _decoder.decode(payload)


# -- commands --------------------------------------------------------------------------------


class Role(enum.StrEnum):
    FLIGHT_CONTROLLER = "flight_controller"
    DIRECTOR = "director"
    CREW = "crew"
    MONITOR = "monitor"


_READ = frozenset(
    {"status", "health", "shotlog.query", "sequence.status", "rebirth", "budget.status"}
)
_SHOOT = _READ | {
    "record", "cut", "light.set", "light.power", "camera.jam", "take.circle", "take.note",
    "sequence.load", "sequence.start", "sequence.pause", "sequence.resume", "sequence.abort",
    "confirm",
}  # fmt: skip

# What each role may send. The flight controller may send everything, hazardous commands
# included; a role missing a command here is refused it before anything is checked further.
PERMISSIONS: dict[Role, frozenset[str] | None] = {
    Role.FLIGHT_CONTROLLER: None,  # every command
    Role.DIRECTOR: frozenset(_SHOOT),
    Role.CREW: frozenset(_SHOOT | {"device.power"}),
    Role.MONITOR: _READ,
}


def may_send(role: Role, command: str) -> bool:
    allowed = PERMISSIONS[role]
    return allowed is None or command in allowed


Millis = Annotated[int, msgspec.Meta(ge=0)]


class CommandRequest(msgspec.Struct, forbid_unknown_fields=True):
    """A signed command as published on cupola/v1/<node>/cmd (GROUND.md, "Commands")."""

    v: Annotated[int, msgspec.Meta(ge=1)]
    id: Annotated[str, msgspec.Meta(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    args: dict[str, Any]
    role: Role
    key_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    counter: Annotated[int, msgspec.Meta(ge=0)]  # strictly increasing per key
    issued_at_ms: Millis  # unix time
    expires_at_ms: Millis
    sig: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]  # HMAC-SHA256, hex


def canonical(fields: dict[str, Any]) -> bytes:
    """The bytes a signature covers: every field but `sig`, JSON, sorted keys, no spaces."""
    unsigned = {k: v for k, v in fields.items() if k != "sig"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: bytes, fields: dict[str, Any]) -> str:
    return hmac.new(secret, canonical(fields), hashlib.sha256).hexdigest()


def signature_valid(secret: bytes, fields: dict[str, Any]) -> bool:
    return hmac.compare_digest(signature(secret, fields), str(fields.get("sig", "")))


class KeyFile(msgspec.Struct, forbid_unknown_fields=True):
    """One role key, as `cupola keys create` writes it (keep it secret: mode 0600)."""

    key_id: str
    role: Role
    secret: str  # base64, 32 random bytes

    def secret_bytes(self) -> bytes:
        return base64.b64decode(self.secret)


class Keyring(msgspec.Struct, forbid_unknown_fields=True):
    """The daemon's copy of every key allowed to command it."""

    keys: dict[str, KeyFile] = msgspec.field(default_factory=dict)
    revoked: list[str] = msgspec.field(default_factory=list)


class KeyFileError(ValueError):
    """A key file or keyring cannot be read; the message names the file."""


def read_keyring(path: Path) -> Keyring:
    try:
        return msgspec.json.decode(path.read_bytes(), type=Keyring)
    except (OSError, msgspec.DecodeError) as exc:
        raise KeyFileError(f"{path}: keyring unreadable: {exc}") from exc


def read_key(path: Path) -> KeyFile:
    try:
        return msgspec.json.decode(path.read_bytes(), type=KeyFile)
    except (OSError, msgspec.DecodeError) as exc:
        raise KeyFileError(f"{path}: key file unreadable: {exc}") from exc
