"""The firmware side of a simulated device: session, duplicate suppression, replies, events.

A subclass maps message types to handlers that act on its physics model. Everything about
the wire (version negotiation, NO_SESSION after a reset, the reply cache that answers a
retransmitted request without acting twice, heartbeats, device faults such as stuck or slow)
lives here once for every device class.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Protocol

from hil.link import EmulatedLink
from hil.models.base import ModelEvent, Refusal
from protocols.catalogue import (
    EVENT,
    HEARTBEAT,
    HELLO,
    PING,
    Command,
    EventSpec,
    MsgType,
    decode_request,
    encode_event,
    encode_nack,
    encode_reply,
)
from protocols.errors import FieldValueError, MessageError, UnknownMessageType
from protocols.framing import Deframer, Frame, Kind
from protocols.messages.common import (
    PROTOCOL_VERSION,
    DeviceClass,
    DeviceEvent,
    EventCode,
    Heartbeat,
    Hello,
    HelloRequest,
    NackCode,
    Ping,
    Severity,
)

log = logging.getLogger(__name__)

REPLY_CACHE_SIZE = 16
_TICK_S = 0.1

Handler = Callable[[Any], Any]


class Model(Protocol):
    powered: bool
    events: list[ModelEvent]

    def advance(self) -> None: ...

    def draw_w(self) -> float: ...

    def reset(self) -> None: ...

    def set_powered(self, powered: bool) -> None: ...

    def describe(self) -> dict[str, object]: ...


class SimDevice:
    """One simulated device on one emulated cable."""

    device_class: ClassVar[DeviceClass]

    def __init__(
        self,
        name: str,
        model: Model,
        path: Path,
        *,
        baud: int | None = None,
        model_name: str,
        firmware: str,
        heartbeat_ms: int = 1000,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.model_name = model_name
        self.firmware = firmware
        self.heartbeat_ms = heartbeat_ms
        self.rng = rng or random.Random()
        self.serial = f"SIM-{self.rng.randrange(10**8):08d}"
        self.link = EmulatedLink(path, self._on_bytes, baud=baud, rng=self.rng)
        self.deframer = Deframer()
        self.boot_id = secrets.randbits(32)  # fresh per power-up, even on a seeded bench
        self.boot_time = time.monotonic()
        self.session_open = False
        self.host_timeout_ms = 0
        self.last_host_frame = time.monotonic()
        self.host_lost = False  # fail-safe applied and not yet cleared by a host frame
        self.stuck = False  # fault: receives but never answers, sends nothing
        self.slow_ms = 0.0  # fault: extra processing time before every reply
        self.requests_handled = 0
        self.duplicates_answered = 0
        # How often each state-changing request (seq, type, body) really acted: never twice.
        self.executions: collections.Counter[tuple[int, int, bytes]] = collections.Counter()
        self._event_seq = 0
        self._reply_cache: collections.OrderedDict[tuple[int, int, bytes], bytes] = (
            collections.OrderedDict()
        )
        self._task: asyncio.Task[None] | None = None
        self.handlers: dict[int, Handler] = {
            MsgType.HELLO: self._hello,
            MsgType.PING: self._ping,
        }

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self.link.path

    @property
    def powered(self) -> bool:
        return self.model.powered

    def start(self) -> None:
        self.link.plug()
        self._task = asyncio.create_task(self._run(), name=f"sim-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.link.close()

    def draw_w(self) -> float:
        return self.model.draw_w()

    def set_powered(self, powered: bool) -> None:
        """Power applied or removed (PDU channel): a power-up is a fresh boot."""
        if powered == self.model.powered:
            return
        self.model.set_powered(powered)
        self._reboot()

    def reset(self) -> None:
        """Firmware reset: forget the session, the reply cache and the event sequence."""
        self.model.reset()
        self._reboot()

    def _reboot(self) -> None:
        self.session_open = False
        self.host_timeout_ms = 0
        self.host_lost = False
        self._reply_cache.clear()
        self._event_seq = 0
        self.deframer.reset()
        self.boot_id = secrets.randbits(32)
        self.boot_time = time.monotonic()

    # -- receive ---------------------------------------------------------------------------

    def _on_bytes(self, data: bytes) -> None:
        if not self.model.powered:
            return
        for item in self.deframer.feed(data):
            if isinstance(item, Frame) and item.kind is Kind.REQUEST:
                self.last_host_frame = time.monotonic()
                self.host_lost = False
                self._handle(item)

    def _handle(self, frame: Frame) -> None:
        if self.stuck:
            return
        key = (frame.seq, frame.msg_type, frame.payload)
        cached = self._reply_cache.get(key)
        if cached is not None:
            self.duplicates_answered += 1
            self._send_reply(cached)
            return
        reply, cacheable = self._execute(frame)
        self.requests_handled += 1
        if cacheable:
            self._reply_cache[key] = reply
            while len(self._reply_cache) > REPLY_CACHE_SIZE:
                self._reply_cache.popitem(last=False)
        self._send_reply(reply)

    def _execute(self, frame: Frame) -> tuple[bytes, bool]:
        """The reply bytes, and whether a retransmission must get them again unexecuted."""
        seq = frame.seq
        try:
            command, body = decode_request(frame)
        except UnknownMessageType as exc:
            return encode_nack(frame.msg_type, seq, NackCode.UNKNOWN_TYPE, str(exc)), False
        except FieldValueError as exc:
            return encode_nack(frame.msg_type, seq, NackCode.OUT_OF_RANGE, str(exc)), False
        except MessageError as exc:
            return encode_nack(frame.msg_type, seq, NackCode.MALFORMED, str(exc)), False
        handler = self.handlers.get(command.code)
        if handler is None or self.device_class not in command.classes:
            detail = f"{command.code.name} is not a {self.device_class.name.lower()} command"
            return encode_nack(frame.msg_type, seq, NackCode.UNKNOWN_TYPE, detail), False
        if not self.session_open and command not in (HELLO, PING):
            return encode_nack(frame.msg_type, seq, NackCode.NO_SESSION, "send HELLO"), False
        try:
            self.model.advance()
            result = handler(body)
            if command.changes_state:
                self.executions[(frame.seq, frame.msg_type, frame.payload)] += 1
            self._drain_model_events()
            return encode_reply(command, result, seq), command.changes_state
        except Refusal as refusal:
            return encode_nack(frame.msg_type, seq, refusal.code, refusal.detail), True
        except MessageError as exc:
            log.exception("%s built an invalid reply", self.name)
            return encode_nack(frame.msg_type, seq, NackCode.INTERNAL, str(exc)), False

    def _send_reply(self, reply: bytes) -> None:
        if self.slow_ms > 0:
            loop = asyncio.get_running_loop()
            loop.call_later(self.slow_ms / 1000.0, self._late_send, reply, self.boot_id)
        else:
            self.link.send(reply)

    def _late_send(self, reply: bytes, boot_id: int) -> None:
        """A reset (or power cut) while a slow command was in progress loses its reply."""
        if self.model.powered and not self.stuck and boot_id == self.boot_id:
            self.link.send(reply)

    # -- common handlers -------------------------------------------------------------------

    def _hello(self, request: HelloRequest) -> Hello:
        if not request.proto_min <= PROTOCOL_VERSION <= request.proto_max:
            raise Refusal(
                NackCode.VERSION_UNSUPPORTED,
                f"device speaks version {PROTOCOL_VERSION}, host offers "
                f"{request.proto_min}..{request.proto_max}",
            )
        self.session_open = True
        self.host_timeout_ms = request.host_timeout_ms
        return Hello(
            proto=PROTOCOL_VERSION,
            device_class=self.device_class,
            model=self.model_name,
            serial=self.serial,
            firmware=self.firmware,
            boot_id=self.boot_id,
            heartbeat_ms=self.heartbeat_ms,
        )

    def _ping(self, request: Ping) -> Ping:
        return request

    # -- unsolicited -----------------------------------------------------------------------

    def send_event(self, spec: EventSpec[Any], body: Any) -> None:
        if not (self.session_open and self.model.powered) or self.stuck:
            return
        self.link.send(encode_event(spec, body, self._event_seq))
        self._event_seq = (self._event_seq + 1) & 0xFFFF

    def _drain_model_events(self) -> None:
        events, self.model.events = self.model.events, []
        for event in events:
            self.on_model_event(event)

    def on_model_event(self, event: ModelEvent) -> None:
        self.send_event(
            EVENT,
            DeviceEvent(
                code=event.code,
                severity=event.severity,
                value=event.value,
                detail=event.detail[:48],
            ),
        )

    async def _run(self) -> None:
        next_beat = time.monotonic()
        while True:
            await asyncio.sleep(_TICK_S)
            if not self.model.powered:
                continue
            self.model.advance()
            self._drain_model_events()
            now = time.monotonic()
            self._watch_host(now)
            if now >= next_beat:
                next_beat = now + self.heartbeat_ms / 1000.0
                uptime_ms = int((now - self.boot_time) * 1000) & 0xFFFFFFFF
                self.send_event(HEARTBEAT, Heartbeat(boot_id=self.boot_id, uptime_ms=uptime_ms))

    def _watch_host(self, now: float) -> None:
        timeout = self.host_timeout_ms / 1000.0
        if not (self.session_open and timeout) or self.host_lost or self.stuck:
            return
        if now - self.last_host_frame > timeout:
            self.host_lost = True
            self.on_host_lost()
            self.send_event(
                EVENT,
                DeviceEvent(
                    code=EventCode.HOST_LOST,
                    severity=Severity.WARNING,
                    value=0,
                    detail="host silent: fail-safe applied",
                ),
            )

    def on_host_lost(self) -> None:
        """This class's fail-safe when the host falls silent (SPEC section 12): by default none."""

    # -- bench view ------------------------------------------------------------------------

    def describe(self) -> dict[str, object]:
        return {
            "device": self.name,
            "kind": self.device_class.name.lower(),
            "path": str(self.path),
            "connected": self.link.port.connected,
            "session_open": self.session_open,
            "boot_id": self.boot_id,
            "stuck": self.stuck,
            "slow_ms": self.slow_ms,
            "requests_handled": self.requests_handled,
            "duplicates_answered": self.duplicates_answered,
            "max_executions": max(self.executions.values(), default=0),
            "executions": sum(self.executions.values()),
            "link": vars(self.link.counters).copy(),
            "model": self.model.describe(),
        }


def command_handlers(*pairs: tuple[Command[Any, Any], Handler]) -> dict[int, Handler]:
    return {command.code: handler for command, handler in pairs}
