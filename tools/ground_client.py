"""A ground station's view of one node: latest states, the event stream, command results.

Used by the demo, the command sender and the tests: it subscribes to everything the node
publishes, keeps what arrived, and sends commands and waits for their results by id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiomqtt
import msgspec

from protocols import ground
from protocols.ground import KeyFile
from tools.broker_link import BrokerLink
from tools.stream_sequence import StreamSequence

_last_counter = 0

# How long an operator's command stays valid unless they say otherwise (`--valid-for`): the
# node refuses it after that, so a command that found the node down never runs much later.
DEFAULT_VALID_FOR_S = 10.0


def sign_command(
    key: KeyFile,
    name: str,
    args: dict[str, Any],
    *,
    lifetime_s: float = 60.0,
    now: float | None = None,
) -> dict[str, Any]:
    """A command signed with `key`; counters are microseconds, strictly increasing."""
    global _last_counter  # noqa: PLW0603 - one counter per process, by design
    issued = time.time() if now is None else now
    _last_counter = max(_last_counter + 1, int(issued * 1e6))
    fields: dict[str, Any] = {
        "v": ground.SCHEMA_VERSION,
        "id": uuid.uuid4().hex,
        "name": name,
        "args": args,
        "role": key.role.value,
        "key_id": key.key_id,
        "counter": _last_counter,
        "issued_at_ms": int(issued * 1000),
        "expires_at_ms": int((issued + lifetime_s) * 1000),
    }
    fields["sig"] = ground.signature(key.secret_bytes(), fields)
    return fields


class CommandTimeout(TimeoutError):
    """No result for a command within the wait; the node may still execute it."""


class GroundSession:
    """One node seen from the ground; reconnects by itself and de-duplicates the stream."""

    def __init__(
        self,
        url: str,
        node: str,
        *,
        key: KeyFile | None = None,
        ca_file: Path | None = None,
        lifetime_s: float = 60.0,
        client_id: str | None = None,
        persistent: bool = False,  # keep the broker-side session (and its queue) across drops
    ) -> None:
        self.url = url
        self.node = node
        self.key = key
        self.lifetime_s = lifetime_s
        self.client_id = client_id or f"ground-{uuid.uuid4().hex[:8]}"
        self.states: dict[str, dict[str, Any]] = {}
        self.state_log: list[tuple[str, dict[str, Any]]] = []  # every state update, in order
        self.events: list[dict[str, Any]] = []
        self.results: dict[str, dict[str, Any]] = {}
        self.stream: list[ground.Envelope] = []  # sequenced messages, each seq once, in order
        self.births: list[ground.Envelope] = []
        # (stream length when a birth arrived, its session start): which session delivered what
        self.sessions: list[tuple[int, float]] = []
        self.deaths: list[ground.Envelope] = []
        self.links: list[ground.Envelope] = []  # the node's notices: stream held or flowing
        # on the node's own broker only, (received at, message): what the crew sees at once
        self.local: list[tuple[float, ground.Envelope]] = []
        self.received = 0
        self.malformed = 0
        # every message as received (topic, payload, time): a monitor view can follow along
        self.on_message: Callable[[str, bytes, float], None] | None = None
        self.sequence = StreamSequence()
        self._changed = asyncio.Condition()
        self.link = BrokerLink(
            url, [f"{ground.ROOT}/{node}/#"], self._receive,
            ca_file=ca_file, client_id=self.client_id, persistent=persistent,
        )  # fmt: skip
        self._runner: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._runner = asyncio.create_task(self.link.run())
        try:
            await asyncio.wait_for(self.link.connected.wait(), 10)
        except TimeoutError:
            await self.__aexit__(None, None, None)
            raise aiomqtt.MqttError(f"cannot reach the broker at {self.url}") from None
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await self._runner

    async def _receive(self, topic: str, payload: bytes) -> None:
        if self.on_message is not None:
            self.on_message(topic, payload, time.time())
        parsed = ground.parse_topic(topic)
        if parsed is not None and parsed[1] == ground.FILE:
            return  # the file downlink's own messages (`cupola receive`)
        kind = ground.kind_of(parsed[1], parsed[2]) if parsed is not None else ""
        try:
            envelope = ground.decode_checked(payload, kind)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.malformed += 1  # no such message exists: it must not stop the session
            return
        self.received += 1
        if parsed is not None:
            self._absorb(parsed[1], parsed[2], envelope)
        async with self._changed:
            self._changed.notify_all()

    def _absorb(self, leaf: str, rest: tuple[str, ...], envelope: ground.Envelope) -> None:
        if leaf == ground.STATE and rest:
            self.states[rest[0]] = envelope.body
            self.state_log.append((rest[0], envelope.body))
        elif leaf == ground.BIRTH:
            self.sequence.follow(envelope.stream)
            self.births.append(envelope)
            started = envelope.body.get("session_started")
            if isinstance(started, int | float):
                self.sessions.append((len(self.stream), float(started)))
            for name, snapshot in envelope.body.get("devices", {}).items():
                self.states.setdefault(name, snapshot)
        elif leaf == ground.DEATH:
            self.deaths.append(envelope)
        elif leaf == ground.LINK:
            self.links.append(envelope)
        elif leaf in ground.STREAM_KINDS and envelope.seq is not None:
            if not self.sequence.accept(envelope.seq):
                return
            self.stream.append(envelope)
            if leaf == ground.EVENT:
                self.events.append(envelope.body)
            elif leaf == ground.RESULT and envelope.body.get("id"):
                self.results[envelope.body["id"]] = envelope.body
        elif leaf == ground.LOCAL:
            self._absorb_local(rest, envelope)

    def _absorb_local(self, rest: tuple[str, ...], envelope: ground.Envelope) -> None:
        """The node's immediate copies on its own broker: the crew's laptop during LOS."""
        if rest[:1] == ("state",):
            return  # the same snapshots as state/<device>
        self.local.append((time.time(), envelope))
        if envelope.kind == ground.RESULT and envelope.body.get("id"):
            self.results.setdefault(envelope.body["id"], envelope.body)

    @property
    def local_events(self) -> list[tuple[float, dict[str, Any]]]:
        """(received at, event) from the node's own broker, as the crew sees them."""
        return [(at, m.body) for at, m in self.local if m.kind == ground.EVENT]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait until `predicate()` holds; raise TimeoutError naming `what` otherwise."""
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(predicate)
        except TimeoutError:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}") from None

    def historical_flags_correct(self) -> bool:
        """Each message is flagged historical exactly when created before its session began."""
        for index, message in enumerate(self.stream):
            marks = [started for at, started in self.sessions if at <= index]
            if marks and message.historical != (message.ts < marks[-1]):
                return False
        return True

    def node_status(self) -> str:
        """The node as its latest birth and death say: online, offline (why) or unknown."""
        birth = self.births[-1] if self.births else None
        death = self.deaths[-1] if self.deaths else None
        if birth is None and death is None:
            return "unknown (no birth or death certificate on the broker)"
        if death is not None and (
            birth is None
            or (death.stream == birth.stream and (death.bd_seq or 0) >= (birth.bd_seq or 0))
        ):
            return f"offline (death certificate: {death.body.get('reason', '?')})"
        assert birth is not None
        started = time.strftime("%H:%M:%S UTC", time.gmtime(birth.ts))
        return f"online (born {started})"

    def online(self, *devices: str) -> bool:
        return all(self.states.get(d, {}).get("online") for d in devices)

    def event_names(self) -> list[str]:
        return [e["name"] for e in self.events]

    def build_command(self, name: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        if self.key is None:
            raise ValueError("commands need a key: GroundSession(..., key=read_key(PATH))")
        return sign_command(self.key, name, args or {}, lifetime_s=self.lifetime_s)

    async def publish_command(self, command: dict[str, Any]) -> None:
        """Publish a signed command where its key's role sends it: a flight controller's on
        the priority topic (its own queue at the broker), everyone else's on the command topic."""
        topic = ground.command_topic(self.node, str(command.get("role", "")))
        await self.link.publish(topic, json.dumps(command).encode())

    async def publish_raw(self, payload: bytes) -> None:
        """Publish bytes on the command topic as they are (tests send malformed ones)."""
        await self.link.publish(ground.topic(self.node, ground.COMMAND), payload)

    async def command(
        self, name: str, args: dict[str, Any] | None = None, *, timeout: float = 15.0
    ) -> dict[str, Any]:
        """Send a command and return its result body."""
        request = self.build_command(name, args)
        await self.publish_command(request)
        command_id = request["id"]
        try:
            await self.wait_for(lambda: command_id in self.results, timeout, f"result of {name}")
        except TimeoutError as exc:
            raise CommandTimeout(str(exc)) from None
        return self.results[command_id]
