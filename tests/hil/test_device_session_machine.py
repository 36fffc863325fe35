"""The device side of SPEC sections 8-10, under any interleaving of requests, repeats and resets."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from hil.devices.light import LightDevice
from hil.models.base import ManualClock
from hil.models.light import LightModel, LightParams
from protocols.catalogue import (
    HELLO,
    LIGHT_POWER,
    LIGHT_SET,
    LIGHT_STATUS,
    PING,
    Command,
    MsgType,
    encode_request,
)
from protocols.framing import Deframer, Frame, Kind, encode_frame
from protocols.messages.common import Empty, HelloRequest, Nack, NackCode, Ping
from protocols.messages.light import LightSet, PowerSwitch
from protocols.records import codec_of


class DeviceSessionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.model = LightModel(LightParams(), ManualClock())
        self.device = LightDevice("key", self.model, Path("/nonexistent/key"))
        self.sent: list[bytes] = []
        self.device.link.send = self.sent.append  # type: ignore[method-assign]
        self.executed = 0
        original = self.model.set_level

        def counting_set_level(*args: Any) -> None:
            self.executed += 1
            original(*args)

        self.model.set_level = counting_set_level  # type: ignore[method-assign]
        self.seq = random.Random(0).randrange(0x10000)
        self.session = False
        self.history: list[tuple[bytes, bytes]] = []  # (request, its reply), newest last
        self.accepted_sets = 0

    def _send(self, wire: bytes) -> tuple[Frame, Any]:
        before = len(self.sent)
        self.device._on_bytes(wire)
        assert len(self.sent) == before + 1, "every request gets exactly one reply"
        (reply,) = [f for f in Deframer().feed(self.sent[-1]) if isinstance(f, Frame)]
        assert reply.kind is Kind.REPLY
        self.history.append((wire, self.sent[-1]))
        if reply.msg_type == MsgType.NACK:
            return reply, codec_of(Nack).parse(reply.payload)
        return reply, None

    def _request(self, command: Command[Any, Any], body: Any) -> tuple[Frame, Any]:
        self.seq = (self.seq + 1) & 0xFFFF
        reply, nack = self._send(encode_request(command, body, self.seq))
        assert reply.seq == self.seq
        return reply, nack

    @rule()
    def hello(self) -> None:
        _, nack = self._request(HELLO, HelloRequest(proto_min=1, proto_max=1, host_timeout_ms=0))
        assert nack is None
        self.session = True

    @rule(level=st.integers(0, 1000), cct=st.integers(2700, 6500), fade=st.integers(0, 5000))
    def set_level(self, level: int, cct: int, fade: int) -> None:
        reply, nack = self._request(
            LIGHT_SET, LightSet(intensity_permille=level, cct_k=cct, fade_ms=fade)
        )
        if not self.session:
            assert nack is not None and nack.code is NackCode.NO_SESSION
        else:
            assert nack is None and reply.msg_type == MsgType.LIGHT_SET
            self.accepted_sets += 1

    @rule(on=st.booleans())
    def power(self, on: bool) -> None:
        _, nack = self._request(LIGHT_POWER, PowerSwitch(on=on))
        assert (nack is None) == self.session

    @rule()
    def status_and_ping(self) -> None:
        _, nack = self._request(LIGHT_STATUS, Empty())
        assert (nack is None) == self.session
        _, nack = self._request(PING, Ping(token=7))
        assert nack is None  # PING works with or without a session

    @rule(payload=st.binary(max_size=12))
    def malformed_or_out_of_range(self, payload: bytes) -> None:
        self.seq = (self.seq + 1) & 0xFFFF
        executed = self.executed
        _, nack = self._send(encode_frame(Kind.REQUEST, MsgType.LIGHT_SET, self.seq, payload))
        if nack is not None:
            assert nack.code in (NackCode.MALFORMED, NackCode.OUT_OF_RANGE, NackCode.NO_SESSION)
            assert self.executed == executed
        else:
            self.accepted_sets += 1  # a random body can be a valid LIGHT_SET

    @rule(type_code=st.integers(0x06, 0x1F))
    def unknown_type(self, type_code: int) -> None:
        self.seq = (self.seq + 1) & 0xFFFF
        _, nack = self._send(encode_frame(Kind.REQUEST, type_code, self.seq, b""))
        assert nack is not None and nack.code is NackCode.UNKNOWN_TYPE

    @precondition(lambda self: bool(self.history))
    @rule(back=st.integers(0, 20))
    def retransmit(self, back: int) -> None:
        """A host retransmission: same bytes (with or without RETRY), never acted on twice."""
        request, _ = self.history[-1 - min(back, len(self.history) - 1)]
        executed = self.executed
        frame = next(f for f in Deframer().feed(request) if isinstance(f, Frame))
        key = (frame.seq, frame.msg_type, frame.payload)
        latest_reply = next(
            reply for sent, reply in reversed(self.history) if self._key(sent) == key
        )
        retry = encode_frame(Kind.REQUEST, frame.msg_type, frame.seq, frame.payload, retry=True)
        cached = key in self.device._reply_cache
        _, nack = self._send(retry)
        if cached:
            assert self.sent[-1] == latest_reply
            assert self.executed == executed
        elif nack is None:  # not remembered (reset or aged out): it ran as a new request
            if frame.msg_type == MsgType.HELLO:
                self.session = True
            elif frame.msg_type == MsgType.LIGHT_SET:
                self.accepted_sets += 1

    @staticmethod
    def _key(wire: bytes) -> tuple[int, int, bytes]:
        frame = next(f for f in Deframer().feed(wire) if isinstance(f, Frame))
        return frame.seq, frame.msg_type, frame.payload

    @rule()
    def reset(self) -> None:
        self.device.reset()
        self.session = False

    @invariant()
    def state_changes_happen_once_per_accepted_request(self) -> None:
        assert self.executed == self.accepted_sets

    @invariant()
    def the_reply_cache_is_bounded(self) -> None:
        assert len(self.device._reply_cache) <= 16


TestDeviceSessionMachine = DeviceSessionMachine.TestCase
