"""The ground link on MQTT: topic namespace and JSON envelopes (documented in GROUND.md).

Session semantics follow Sparkplug B: a birth certificate with the full state on every
connect, a death certificate as the MQTT Last Will, a birth/death sequence (bd_seq) tying
the two together, and a sequence number on every stream message so the ground can detect
gaps and drop duplicates.
"""

from __future__ import annotations

import base64
import enum
import functools
import hmac
import json
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import msgspec

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("ground.schema.json")
ROOT = "cupola/v1"

# Leaves under cupola/v1/<node>/
BIRTH = "birth"  # retained: the full state, published on every connect
DEATH = "death"  # retained: the Last Will (or a clean shutdown)
STATE = "state"  # state/<device>, retained: latest snapshot of one device
EVENT = "event"  # stream: events, in order, sequence-numbered
TELEMETRY = "telemetry"  # stream: periodic samples
RESULT = "result"  # stream: one result per command
COMMAND = "cmd"  # ground -> node: signed command requests
# ground -> node: flight controllers' commands only, read on a broker connection of their own
# so that a flood on cmd cannot delay them (GROUND.md, "Priority commands")
PRIORITY_COMMAND = "cmd/priority"
LINK = "link"  # retained: whether the stream flows or is held, why and until when
FILE = "file"  # file/meta, file/chunk: the file downlink (protocols/filelink.py), no envelope
# On the node's own broker only (never bridged, never budgeted): what the crew sees at once.
LOCAL = "local"
LOCAL_RESULT = "local/result"  # every command result
LOCAL_EVENT = "local/event"  # every event (alarms included), not sequenced
LOCAL_LIMITS = "local/limits"  # retained: every limit yellow or red now
LOCAL_STATE = "local/state"  # local/state/<device>, retained: as state/<device>
LIMITS = "limits"  # the kind of the local/limits message

STREAM_KINDS = (EVENT, TELEMETRY, RESULT)


def topic(node: str, leaf: str, *rest: str) -> str:
    return "/".join((ROOT, node, leaf, *rest))


def command_topic(node: str, role: str) -> str:
    """Where a command signed with a key of `role` is published: a flight controller's on
    the priority topic, everyone else's on the ordinary command topic."""
    leaf = PRIORITY_COMMAND if role == Role.FLIGHT_CONTROLLER else COMMAND
    return topic(node, leaf)


@functools.lru_cache(maxsize=4096)
def parse_topic(name: str) -> tuple[str, str, tuple[str, ...]] | None:
    """(node, leaf, rest) of a Cupola topic, or None for anything else. A node uses a few
    hundred topics over and over: each is parsed once (a tenth of what a monitor spends on a
    message); the cache is bounded, whatever topics a stranger publishes."""
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
    # with bd_seq: which numbering seq and bd_seq belong to; a new stream (the node's stored
    # state was lost) starts both again from 1
    stream: int | None = None
    historical: bool = False  # queued before the session that delivered it began


# -- bodies (GROUND.md; JSON Schema in ground.schema.json) -------------------------------------

Severity = Literal["diagnostic", "info", "warning", "critical"]


class EventBody(msgspec.Struct, forbid_unknown_fields=True):
    name: str  # dotted and stable: device.offline, take.started, limit.camera.temperature.red
    severity: Severity
    message: str  # one line a flight controller can act on
    source: str  # device name or daemon component
    data: dict[str, Any]
    ts: float  # unix time it happened (the envelope's ts is when it was queued)


class ResultBody(msgspec.Struct, forbid_unknown_fields=True):
    id: str | None  # the command's id; None when the command could not even be parsed
    name: str | None
    status: Literal["ok", "rejected", "failed", "armed"]
    reason: str  # why, whenever the status is not ok
    result: dict[str, Any] = msgspec.field(default_factory=dict)
    role: str | None = None
    key_id: str | None = None
    executed: str | None = None  # confirm: the hazardous command it executed
    armed_by: str | None = None  # confirm: the key id that armed it (two-person rule)
    duplicate: bool = False  # a repeated command id: this is the earlier result, not a new run


class TelemetryBody(msgspec.Struct, forbid_unknown_fields=True):
    ts: float
    devices: dict[str, dict[str, Any]]  # per device: online and its key readings
    power: dict[str, Any]  # cap_w, draw_w, free_w, shedding, reserve_w, next_change
    data: dict[str, Any]  # media per camera (free, time left, today's level), downlink today
    backlog: dict[str, int]  # the outbox: messages and bytes waiting for the ground
    limits: list[dict[str, Any]]  # every limit yellow or red now (device, limit, level)


class DeviceSnapshot(msgspec.Struct, forbid_unknown_fields=True):
    device: str
    kind: Literal["camera", "light", "pdu"]
    online: bool
    offline_reason: str | None
    identity: dict[str, Any] | None  # HELLO: model, serial, firmware, boot_id, ...
    status: dict[str, Any] | None  # the device's last status (SPEC.md bodies, enums by name)
    status_at: float | None
    missed_polls: int
    link: dict[str, Any]  # link statistics and round-trip histogram
    timecode_offset_frames: float | None = None  # cameras: vs the daemon's reference
    timecode_uncertainty_frames: float | None = None  # the offset is right within +- this
    timecode_measured_at: float | None = None  # unix time the camera's clock was read
    pdu_channel: int | None = None  # the PDU channel feeding it, when configured
    camera_settings: dict[str, Any] | None = None  # cameras: as read back (SPEC.md CameraSettings)
    protocol: Literal["native", "sony9pin", "enttec-dmx", "modbus-rtu"] = "native"
    reports: list[str] | None = None  # real gear: the capabilities it reports (SPEC.md 20)
    not_reported: list[str] = msgspec.field(default_factory=list)  # fields modelled, not read


class Argument(msgspec.Struct, forbid_unknown_fields=True):
    """One argument of a command: the JSON types the node converts it from."""

    types: list[str]  # of string, integer, number, boolean, array, object, null
    required: bool


class CommandSignature(msgspec.Struct, forbid_unknown_fields=True):
    """What a command does and the arguments it takes, so ground tools can help and check."""

    doc: str
    args: dict[str, Argument]
    hazardous: bool = False  # may be armed and wait for `confirm` (always, or for some args)


class BirthBody(msgspec.Struct, forbid_unknown_fields=True):
    node: str
    schema: int
    started: float  # daemon start
    session_started: float  # messages queued before this are flagged historical
    frame_rate: float
    devices: dict[str, DeviceSnapshot]
    groups: dict[str, list[str]]
    commands: dict[str, CommandSignature]  # every command this node accepts, by name
    limits: list[dict[str, Any]]
    sequence: dict[str, Any]
    backlog: dict[str, int]
    budget: dict[str, Any]  # power (cap, draw, loads, timeline), media, downlink


class DeathBody(msgspec.Struct, forbid_unknown_fields=True):
    reason: str


class LinkBody(msgspec.Struct, forbid_unknown_fields=True):
    """The stream's state, sent before it is held and when it flows again (GROUND.md)."""

    state: Literal["held", "flowing"]
    reason: str  # held: "contact schedule" or "budget exhausted"; flowing: ""
    until: float | None  # held: unix time the node expects to send again (None: unknown)
    at: float  # unix time the node decided it
    backlog: dict[str, int]  # the outbox at that moment: what waits for the ground
    limits: list[dict[str, Any]]  # every limit yellow or red at that moment


class LimitsBody(msgspec.Struct, forbid_unknown_fields=True):
    limits: list[dict[str, Any]]  # every limit yellow or red now (device, limit, level)


BODIES: dict[str, type[msgspec.Struct]] = {
    BIRTH: BirthBody,
    DEATH: DeathBody,
    STATE: DeviceSnapshot,
    EVENT: EventBody,
    TELEMETRY: TelemetryBody,
    RESULT: ResultBody,
    LINK: LinkBody,
    LIMITS: LimitsBody,
}


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Envelope)


def encode(envelope: Envelope) -> bytes:
    return _encoder.encode(envelope)


def decode(payload: bytes) -> Envelope:
    """Parse a node message; raises msgspec.DecodeError or msgspec.ValidationError.

    Deep nesting (anyone who can publish on a node's topic can send `{"a":` x 100,000)
    exhausts the decoder's recursion: that is a malformed message too, not a crash."""
    return _decode_with(_decoder, payload)


def _decode_with(decoder: msgspec.json.Decoder[Any], payload: bytes) -> Envelope:
    try:
        envelope: Envelope = decoder.decode(payload)
    except RecursionError:
        raise msgspec.DecodeError("JSON nested too deeply") from None
    return envelope


_LOCAL_KINDS = {"result": RESULT, "event": EVENT, "state": STATE, "limits": LIMITS}


def kind_of(leaf: str, rest: tuple[str, ...]) -> str:
    """The kind of message a topic carries (the node's local copy of a result is a result)."""
    if leaf == LOCAL and rest:
        return _LOCAL_KINDS.get(rest[0], LOCAL)
    return leaf


# States are most of what a ground tool reads (every device's, twice a second): their body is
# decoded and held to its schema in one pass, as the Struct, and handed on as the dict of its
# fields, which is what every reader takes (a third less than decoding, then checking the dict).
_state_decoder = msgspec.json.Decoder(
    msgspec.defstruct(
        "StateEnvelope", [("body", DeviceSnapshot)], bases=(Envelope,), omit_defaults=True
    )
)


def decode_checked(payload: bytes, kind: str) -> Envelope:
    """Parse a node message and hold its body to the schema of `kind`: a message that breaks
    it is one the node never sends. Raises msgspec.DecodeError or msgspec.ValidationError.

    A state's body comes back with every field of the schema, each as the schema's type (the
    node sends them all, as that type; a field an older node did not send has its default)."""
    if kind == STATE:
        typed = _decode_with(_state_decoder, payload)
        return Envelope(  # an Envelope, as every other kind's: not the typed subclass
            v=typed.v, node=typed.node, kind=typed.kind, ts=typed.ts,
            body=msgspec.structs.asdict(cast(msgspec.Struct, typed.body)),
            seq=typed.seq, bd_seq=typed.bd_seq, stream=typed.stream, historical=typed.historical,
        )  # fmt: skip
    envelope = decode(payload)
    if kind in BODIES:
        msgspec.convert(envelope.body, BODIES[kind])
    return envelope


# -- commands --------------------------------------------------------------------------------


class Role(enum.StrEnum):
    FLIGHT_CONTROLLER = "flight_controller"
    DIRECTOR = "director"
    CREW = "crew"
    MONITOR = "monitor"


_READ = frozenset(
    {"status", "health", "shotlog.query", "sequence.status", "rebirth", "budget.status",
     "events.recent", "authority.status", "file.ack"}
)  # fmt: skip
_SHOOT = _READ | {
    "record", "cut", "light.set", "light.preset", "light.power", "camera.jam",
    "camera.clear_error", "camera.settings", "take.circle", "take.note",
    "sequence.load", "sequence.start", "sequence.pause", "sequence.resume", "sequence.abort",
    "confirm", "command.cancel",
    # command authority, where the node enforces it (firmware_host/groundlink/authority.py)
    "authority.claim", "authority.request", "authority.accept", "authority.release",
}  # fmt: skip

# What each role may send. The flight controller may send everything, hazardous commands
# and `keys.revoke` included; a role missing a command here is refused it (a command the node
# does not know is refused as unknown first, whoever sends it).
PERMISSIONS: dict[Role, frozenset[str] | None] = {
    Role.FLIGHT_CONTROLLER: None,  # every command
    Role.DIRECTOR: frozenset(_SHOOT),
    Role.CREW: frozenset(_SHOOT | {"device.power"}),
    Role.MONITOR: _READ,
}


def may_send(role: Role, command: str) -> bool:
    allowed = PERMISSIONS[role]
    return allowed is None or command in allowed


KEY_ID_MAX = 64
INT64_MAX = 2**63 - 1  # what SQLite stores: every integer the node keeps fits it
Millis = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]


class CommandRequest(msgspec.Struct, forbid_unknown_fields=True):
    """A signed command as published on cupola/v1/<node>/cmd (GROUND.md, "Commands")."""

    v: Annotated[int, msgspec.Meta(ge=1, le=INT64_MAX)]
    id: Annotated[str, msgspec.Meta(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    args: dict[str, Any]
    role: Role
    key_id: Annotated[str, msgspec.Meta(min_length=1, max_length=KEY_ID_MAX)]
    counter: Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]  # strictly increasing per key
    issued_at_ms: Millis  # unix time
    expires_at_ms: Millis  # not_after: set by the sender, checked again just before running
    sig: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]  # HMAC-SHA256, hex


# json.dumps builds an encoder per call when given options: one, reused, halves the cost of
# checking a signature (the node checks every message anyone publishes).
_canonical_encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(fields: dict[str, Any]) -> bytes:
    """The bytes a signature covers: every field but `sig`, JSON, sorted keys, no spaces."""
    unsigned = {k: v for k, v in fields.items() if k != "sig"}
    return _canonical_encoder.encode(unsigned).encode()


def signature(secret: bytes, fields: dict[str, Any]) -> str:
    return hmac.digest(secret, canonical(fields), "sha256").hex()  # one-shot: the fast path


def signature_valid(secret: bytes, fields: dict[str, Any]) -> bool:
    claimed = fields.get("sig")
    if not isinstance(claimed, str) or not claimed.isascii():
        return False  # compare_digest raises on non-ASCII text; no such text is a signature
    return hmac.compare_digest(signature(secret, fields), claimed)


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


def schema() -> dict[str, Any]:
    """JSON Schema of every message: the envelope, each body, the command request."""
    types = [Envelope, CommandRequest, KeyFile, *BODIES.values()]
    _, definitions = msgspec.json.schema_components(types, ref_template="#/$defs/{name}")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"Cupola ground link, schema version {SCHEMA_VERSION}",
        "$defs": definitions,
    }


if __name__ == "__main__":
    SCHEMA_PATH.write_bytes(msgspec.json.format(msgspec.json.encode(schema())) + b"\n")
    print(f"wrote {SCHEMA_PATH}")
