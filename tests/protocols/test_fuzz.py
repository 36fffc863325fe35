"""Random and mutated input: only typed protocol errors ever come out of a parser."""

from __future__ import annotations

import contextlib
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.catalogue import COMMANDS, decode_any, decode_event, decode_reply, decode_request
from protocols.errors import ProtocolError
from protocols.framing import MAX_PAYLOAD, Deframer, Frame, Kind, RejectedFrame, decode_frame
from protocols.records import codec_of, encode_body
from tests.protocols.test_deframer import frame_specs, wire
from tests.strategies import all_bodies, record
from tools.decode import decode_stream

BODIES = all_bodies()


def _mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(5)
        if op == 0 and buf:
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:
            del buf[rng.randrange(len(buf)) :]
        elif op == 2:
            buf[rng.randrange(len(buf) + 1) : 0] = rng.randbytes(rng.randint(1, 20))
        elif op == 3 and buf:
            buf[rng.randrange(len(buf))] = rng.choice((0x00, 0xFF, 0x7F, 0x80))
        elif op == 4 and buf:
            start = rng.randrange(len(buf))
            buf[start : start + 4] = b"\xff\xff\xff\xff"
    return bytes(buf)


def _only_protocol_errors(call: Any, *args: Any) -> None:
    with contextlib.suppress(ProtocolError):
        call(*args)


@given(data=st.binary(max_size=4096))
def test_deframer_never_raises_on_random_bytes(data: bytes) -> None:
    for item in Deframer().feed(data):
        assert isinstance(item, Frame | RejectedFrame)


@given(data=st.binary(max_size=300))
def test_frame_decoder_never_raises(data: bytes) -> None:
    assert isinstance(decode_frame(data), Frame | RejectedFrame)


@pytest.mark.parametrize("cls", BODIES, ids=lambda c: c.__name__)
@given(payload=st.binary(max_size=MAX_PAYLOAD))
def test_body_parsers_raise_only_protocol_errors_on_random_bytes(
    cls: type[Any], payload: bytes
) -> None:
    _only_protocol_errors(codec_of(cls).parse, payload)


@pytest.mark.parametrize("cls", BODIES, ids=lambda c: c.__name__)
@given(data=st.data(), seed=st.integers(0, 2**32))
def test_body_parsers_raise_only_protocol_errors_on_mutated_bodies(
    cls: type[Any], data: st.DataObject, seed: int
) -> None:
    valid = encode_body(data.draw(record(cls)))
    _only_protocol_errors(codec_of(cls).parse, _mutate(valid, random.Random(seed)))


@given(
    kind=st.sampled_from(list(Kind)),
    msg_type=st.integers(0, 255),
    seq=st.integers(0, 0xFFFF),
    payload=st.binary(max_size=MAX_PAYLOAD),
)
def test_message_decoders_raise_only_protocol_errors_on_any_frame(
    kind: Kind, msg_type: int, seq: int, payload: bytes
) -> None:
    frame = Frame(kind, msg_type, seq, payload)
    _only_protocol_errors(decode_any, frame)
    _only_protocol_errors(decode_request, frame)
    _only_protocol_errors(decode_event, frame)
    for command in COMMANDS.values():
        _only_protocol_errors(decode_reply, frame, command)


@given(specs=st.lists(frame_specs, min_size=1, max_size=5), seed=st.integers(0, 2**32))
def test_the_decode_tool_survives_mutated_captures(specs: list[Any], seed: int) -> None:
    capture = _mutate(b"".join(wire(s) for s in specs), random.Random(seed))
    for entry in decode_stream([capture]):
        assert entry["status"] in ("ok", "dropped", "malformed")


@pytest.mark.soak
def test_long_fuzz_campaign_over_every_parser() -> None:
    rng = random.Random(1)
    codecs = [codec_of(cls) for cls in BODIES]
    for _ in range(2_000_000):
        payload = rng.randbytes(rng.randint(0, MAX_PAYLOAD))
        _only_protocol_errors(rng.choice(codecs).parse, payload)
        frame = Frame(Kind(rng.randrange(3)), rng.randrange(256), 0, payload)
        _only_protocol_errors(decode_any, frame)
        Deframer().feed(payload)
