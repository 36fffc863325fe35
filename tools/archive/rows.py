"""A node message as an archive row: pure, no I/O, so it is tested on its own.

Stream messages (event, telemetry, result) carry `seq` but not the stream it belongs to: that
is the latest birth's (GROUND.md, "Stream identity"), which every node publishes before
anything else on each connection. `Streams` follows the births per node; the archive seeds it
from the database on start, so a restarted archive fed its queued messages before the
retained birth still files them under the right stream.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import msgspec

from protocols import alarms, ground

UNKNOWN_STREAM = 0  # a node whose birth no archive has seen yet: its stream is not known

# What the archive keeps: the node's own messages to the ground. Commands are the consoles'
# (their results are kept); local/ copies never leave the station.
SESSION_KINDS = (ground.BIRTH, ground.DEATH, ground.STATE, ground.LINK)

_json = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class StreamRow:
    node: str
    stream: int
    seq: int
    kind: str
    ts: datetime.datetime
    received: datetime.datetime
    historical: bool
    body: str  # JSON text

    def values(self) -> tuple[Any, ...]:
        return (self.node, self.stream, self.seq, self.kind, self.ts, self.received,
                self.historical, self.body)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SessionRow:
    node: str
    topic: str  # under cupola/v1/<node>/: birth, death, link, state/<device>
    kind: str
    ts: datetime.datetime
    received: datetime.datetime
    bd_seq: int | None
    stream: int | None
    body: str

    def values(self) -> tuple[Any, ...]:
        return (self.node, self.topic, self.kind, self.ts, self.received, self.bd_seq,
                self.stream, self.body)  # fmt: skip


@dataclass(frozen=True, slots=True)
class AlarmRow:
    node: str
    source: str
    what: str
    action: str
    by_key: str
    at: datetime.datetime
    received: datetime.datetime
    body: str

    @property
    def ts(self) -> datetime.datetime:
        return self.at

    def values(self) -> tuple[Any, ...]:
        return (self.node, self.source, self.what, self.action, self.by_key, self.at,
                self.received, self.body)  # fmt: skip


Row = StreamRow | SessionRow | AlarmRow


class Rejected(ValueError):
    """A message the archive does not keep; the text says why (counted, never fatal)."""


def moment(ts: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC)


class Streams:
    """The stream each node's sequence numbers belong to, from its births."""

    def __init__(self, known: dict[str, int] | None = None) -> None:
        self.current: dict[str, int] = dict(known or {})

    def row(self, topic: str, payload: bytes, received: float) -> Row:
        """The row for one message as received; raises Rejected for one not kept."""
        parsed = ground.parse_topic(topic)
        if parsed is None:
            raise Rejected(f"not a Cupola topic: {topic[:80]!r}")
        node, leaf, rest = parsed
        if leaf == alarms.LEAF:
            return _alarm_row(topic, node, payload, received)
        if leaf not in (*ground.STREAM_KINDS, *SESSION_KINDS):
            raise Rejected(f"{leaf!r} messages are not archived")
        try:
            envelope = ground.decode_checked(payload, leaf)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise Rejected(f"{topic}: breaks the schema: {exc}") from None
        if envelope.node != node:
            raise Rejected(f"{topic}: claims to be from node {envelope.node!r}")
        body = _json.encode(envelope.body).decode()
        if leaf in ground.STREAM_KINDS:
            if envelope.seq is None:
                raise Rejected(f"{topic}: a stream message without seq")
            stream = self.current.get(node, UNKNOWN_STREAM)
            return StreamRow(node, stream, envelope.seq, leaf, moment(envelope.ts),
                             moment(received), envelope.historical, body)  # fmt: skip
        if leaf == ground.BIRTH and envelope.stream is not None:
            self.current[node] = envelope.stream
        name = "/".join((leaf, *rest))
        return SessionRow(node, name, leaf, moment(envelope.ts), moment(received),
                          envelope.bd_seq, envelope.stream, body)  # fmt: skip


def _alarm_row(topic: str, node: str, payload: bytes, received: float) -> AlarmRow:
    if not payload:
        raise Rejected(f"{topic}: a retained acknowledgement removed (its alarm cleared)")
    try:
        action = alarms.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        raise Rejected(f"{topic}: not an alarm action: {exc}") from None
    if action.node != node:
        raise Rejected(f"{topic}: claims to be about node {action.node!r}")
    body = alarms.encode(action).decode()
    return AlarmRow(node, action.source, action.what, action.action, action.by,
                    moment(action.at), moment(received), body)  # fmt: skip
