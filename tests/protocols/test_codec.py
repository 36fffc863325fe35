"""Every message body: build -> parse round trip, both codec paths agree, ranges enforced."""

from __future__ import annotations

import enum
import gc
import json
import pickle
from typing import Annotated, Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.catalogue import (
    COMMANDS,
    EVENTS,
    NackReceived,
    decode_event,
    decode_reply,
    decode_request,
    encode_event,
    encode_nack,
    encode_reply,
    encode_request,
)
from protocols.errors import FieldValueError, MessageError
from protocols.framing import Deframer, Frame
from protocols.messages.common import NackCode
from protocols.records import U8, Wire, codec_of, encode_body, to_jsonable
from protocols.records import record as protocol_record
from tests.strategies import all_bodies, per_case, record, wire_bounds

BODIES = all_bodies()
FIXED = [cls for cls in BODIES if codec_of(cls).fixed is not None]
DERIVED = [cls for cls in BODIES if codec_of(cls).fast is not None]
VARIABLE = [cls for cls in BODIES if codec_of(cls).fast is None]


def _frame(wire: bytes) -> Frame:
    (item,) = Deframer().feed(wire)
    assert isinstance(item, Frame)
    return item


def test_the_catalogue_has_every_kind_of_layout() -> None:
    assert len(FIXED) > 10 and len(DERIVED) - len(FIXED) == 2 and len(VARIABLE) >= 5


@pytest.mark.parametrize("cls", BODIES, ids=lambda c: c.__name__)
@per_case
@given(data=st.data())
def test_body_round_trip(cls: type[Any], data: st.DataObject) -> None:
    value = data.draw(record(cls))
    assert codec_of(cls).parse(encode_body(value)) == value


@pytest.mark.parametrize("cls", BODIES, ids=lambda c: c.__name__)
@per_case
@given(data=st.data())
def test_a_parsed_record_is_immutable_untracked_by_the_collector_and_named_as_declared(
    cls: type[Any], data: st.DataObject
) -> None:
    value = codec_of(cls).parse(encode_body(data.draw(record(cls))))
    for field in codec_of(cls).fields:
        with pytest.raises(AttributeError):
            setattr(value, field.name, getattr(value, field.name))
    assert not gc.is_tracked(value)  # gc=False holds only while no record can be in a cycle
    assert pickle.loads(pickle.dumps(value)) == value  # found again by module and name
    assert cls.__module__.startswith("protocols.") and cls.__qualname__ == cls.__name__


def _jsonable_by_definition(value: Any) -> Any:
    """to_jsonable as specified, field by field whatever each holds."""
    if isinstance(value, msgspec.Struct):
        fields = codec_of(type(value)).fields
        return {f.name: _jsonable_by_definition(getattr(value, f.name)) for f in fields}
    if isinstance(value, enum.IntFlag):
        return [m.name.lower() for m in type(value) if m in value and m.name]
    if isinstance(value, enum.Enum):
        return value.name.lower()
    if isinstance(value, tuple | list):
        return [_jsonable_by_definition(v) for v in value]
    return value


@pytest.mark.parametrize("cls", BODIES, ids=lambda c: c.__name__)
@per_case
@given(data=st.data())
def test_a_records_json_form_is_the_specified_one_and_encodes(
    cls: type[Any], data: st.DataObject
) -> None:
    value = data.draw(record(cls))
    jsonable = to_jsonable(value)
    assert jsonable == _jsonable_by_definition(value)
    assert json.loads(json.dumps(jsonable)) == jsonable


@pytest.mark.parametrize("cls", DERIVED, ids=lambda c: c.__name__)
@per_case
@given(data=st.data())
def test_derived_struct_path_matches_construct(cls: type[Any], data: st.DataObject) -> None:
    codec = codec_of(cls)
    value = data.draw(record(cls))
    payload = codec.build(value)
    assert payload == bytes(codec.compiled.build(codec.to_values(value)))
    assert payload == bytes(codec.struct.build(codec.to_values(value)))  # uncompiled construct
    assert codec.parse(payload) == codec.parse_with_construct(payload) == value


@pytest.mark.parametrize("code", sorted(COMMANDS), ids=lambda c: COMMANDS[c].code.name)
@per_case
@given(data=st.data(), seq=st.integers(0, 0xFFFF), retry=st.booleans())
def test_request_and_reply_frames_round_trip(
    code: int, data: st.DataObject, seq: int, retry: bool
) -> None:
    command = COMMANDS[code]
    request = data.draw(record(command.request))
    frame = _frame(encode_request(command, request, seq, retry=retry))
    assert (frame.seq, frame.retry) == (seq, retry)
    assert decode_request(frame) == (command, request)
    reply = data.draw(record(command.reply))
    assert decode_reply(_frame(encode_reply(command, reply, seq)), command) == reply


@pytest.mark.parametrize("code", sorted(EVENTS), ids=lambda c: EVENTS[c].code.name)
@per_case
@given(data=st.data(), seq=st.integers(0, 0xFFFF))
def test_event_frames_round_trip(code: int, data: st.DataObject, seq: int) -> None:
    spec = EVENTS[code]
    body = data.draw(record(spec.body))
    assert decode_event(_frame(encode_event(spec, body, seq))) == (spec, body)


@given(code=st.sampled_from(list(NackCode)), detail=st.text(max_size=80))
def test_nack_reaches_the_caller_as_a_typed_refusal(code: NackCode, detail: str) -> None:
    command = COMMANDS[0x20]
    frame = _frame(encode_nack(command.code, 5, code, detail))
    with pytest.raises(NackReceived) as refusal:
        decode_reply(frame, command)
    assert refusal.value.code is code
    assert detail.encode()[:64].decode("utf-8", "ignore") == refusal.value.nack.detail


def _ranged_int_fields() -> list[tuple[type[Any], str, int, int]]:
    out = []
    for cls in BODIES:
        for field in codec_of(cls).fields:
            meta = field.meta
            if isinstance(meta, Wire) and field.base is int:
                lo, hi = wire_bounds(meta)
                if (meta.lo is not None and meta.lo > lo) or (meta.hi is not None and meta.hi < hi):
                    out.append((cls, field.name, lo, hi))
    return out


@pytest.mark.parametrize(
    "cls,name,lo,hi", _ranged_int_fields(), ids=lambda v: getattr(v, "__name__", str(v))
)
@per_case
@given(data=st.data())
def test_out_of_range_values_are_refused_both_ways(
    cls: type[Any], name: str, lo: int, hi: int, data: st.DataObject
) -> None:
    codec = codec_of(cls)
    meta = next(f.meta for f in codec.fields if f.name == name)
    assert isinstance(meta, Wire)
    outside = []
    if meta.lo is not None and meta.lo > lo:
        outside.append(st.integers(lo, meta.lo - 1))
    if meta.hi is not None and meta.hi < hi:
        outside.append(st.integers(meta.hi + 1, hi))
    bad = data.draw(st.one_of(*outside))
    value = data.draw(record(cls))
    values = codec.to_values(value)
    values[name] = bad
    forged = bytes(codec.struct.build(values))  # construct does not know our ranges
    with pytest.raises(FieldValueError, match=name):
        codec.parse(forged)
    with pytest.raises(FieldValueError, match=name):
        encode_body(msgspec.structs.replace(value, **{name: bad}))  # a record takes any value


def test_short_body_is_malformed_not_a_crash() -> None:
    command = COMMANDS[0x41]  # LIGHT_SET
    with pytest.raises(MessageError, match="needs at least"):
        codec_of(command.request).parse(b"\x01")


def test_a_record_declaring_more_than_fields_is_refused_at_its_definition() -> None:
    def with_default() -> None:
        @protocol_record
        class Dimmed:
            level: Annotated[int, Wire(U8)] = 5

    def with_method() -> None:
        @protocol_record
        class Named:
            level: Annotated[int, Wire(U8)]

            def half(self) -> int:
                return self.level // 2

    class Base:
        pass

    def with_base() -> None:
        @protocol_record
        class Derived(Base):
            level: Annotated[int, Wire(U8)]

    for define, named in ((with_default, "level"), (with_method, "half"), (with_base, "base")):
        with pytest.raises(TypeError, match=f"fields only.*{named}"):
            define()
