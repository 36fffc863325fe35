"""The ground link on MQTT: topic namespace and JSON envelopes (documented in GROUND.md).

Session semantics follow Sparkplug B: a birth certificate with the full state on every
connect, a death certificate as the MQTT Last Will, a birth/death sequence (bd_seq) tying
the two together, and a sequence number on every stream message so the ground can detect
gaps and drop duplicates.
"""

from __future__ import annotations

from typing import Any

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
