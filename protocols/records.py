"""Message bodies declared once, as annotated fields, and compiled to construct codecs.

A body reads like a row of the spec:

    @record
    class LightSet:
        intensity_permille: Annotated[int, Wire(U16, 0, 1000)]
        cct_k: Annotated[int, Wire(U16, 2700, 6500)]

The decorator makes it a frozen msgspec Struct, builds the construct `Struct` from the
annotations in declaration order, compiles it, and adds range, enum and text-length checks
on both build and parse, so a value outside the spec never leaves or enters the program.
"""

from __future__ import annotations

import enum
import functools
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, cast, dataclass_transform, get_args, get_origin

import msgspec
from construct import (
    Construct,
    ConstructError,
    FormatField,
    Int8sl,
    Int8ul,
    Int16sl,
    Int16ul,
    Int32sl,
    Int32ul,
    Int64ul,
    PascalString,
    PrefixedArray,
    Struct,
)

from protocols.errors import FieldValueError, MessageError

U8: Construct = Int8ul
U16: Construct = Int16ul
U32: Construct = Int32ul
U64: Construct = Int64ul
I8: Construct = Int8sl
I16: Construct = Int16sl
I32: Construct = Int32sl

T = TypeVar("T")


class DocIntEnum(enum.IntEnum):
    """An IntEnum whose members carry a one-line meaning, for the spec and the decoder."""

    doc: str

    def __new__(cls, value: int, doc: str = "") -> DocIntEnum:
        member = int.__new__(cls, value)
        member._value_ = value
        member.doc = doc
        return member


@dataclass(frozen=True)
class Wire:
    """How a scalar field is carried: its construct type and its inclusive range."""

    subcon: Construct
    lo: int | None = None
    hi: int | None = None
    doc: str = ""


@dataclass(frozen=True)
class Text:
    """UTF-8 text with a u8 byte-length prefix; `max_bytes` is the spec limit."""

    max_bytes: int
    doc: str = ""


@dataclass(frozen=True)
class ArrayOf:
    """A u8 count followed by that many records of `item`."""

    item: type[Any]
    max_count: int
    doc: str = ""


_PARSE_ERRORS = (ConstructError, struct.error, UnicodeError, ValueError, IndexError, OverflowError)


@dataclass(frozen=True)
class _Field:
    name: str
    base: Any  # the declared Python type (int, bool, str, an IntEnum, a tuple of records)
    meta: Wire | Text | ArrayOf  # how it is carried
    subcon: Construct
    # Validate a Python value and return what construct builds from it.
    to_wire: Callable[[str, Any], Any] | None
    # Validate a parsed value and return the Python value.
    from_wire: Callable[[str, Any], Any] | None


class RecordCodec:
    """The codec of one record class, built from its construct declaration.

    Records made only of fixed-size integers (most of the catalogue) parse and build through
    a `struct.Struct` derived mechanically from that declaration; the rest go through the
    compiled construct parser. Both paths are checked against each other in the tests.
    """

    def __init__(self, cls: type[Any], record_fields: list[_Field]) -> None:
        self.cls = cls
        self.name = cls.__name__
        self.fields = record_fields
        self.struct = Struct(*(f.name / f.subcon for f in record_fields))
        self.fixed = fixed_layout(self.struct)
        self.fast = self.fixed or _TrailingArrayLayout.derive(record_fields)
        self._names = tuple(f.name for f in record_fields)
        index = {name: i for i, name in enumerate(self._names)}
        self._to_wire = tuple((f.name, f.to_wire) for f in record_fields if f.to_wire)
        self._from_wire = tuple(
            (index[f.name], f.name, f.from_wire) for f in record_fields if f.from_wire
        )
        # On the derived path an array arrives as finished records, checked by the layout.
        self._fast_from_wire = tuple(
            entry
            for entry in self._from_wire
            if not isinstance(record_fields[entry[0]].meta, ArrayOf)
        )
        self.min_size = _min_size(self.struct)

    @functools.cached_property
    def compiled(self) -> Construct:
        """The compiled construct parser, built on first use: compiling every record at import
        cost the daemon's and each tool's start-up a fifth of a second, and records with a
        fixed layout never need it."""
        return self.struct.compile()

    def to_values(self, obj: Any) -> dict[str, Any]:
        """The dict construct builds from, after checking every constrained field."""
        values = {name: getattr(obj, name) for name in self._names}
        for name, to_wire in self._to_wire:
            values[name] = to_wire(name, values[name])
        return values

    def build(self, obj: Any) -> bytes:
        values = self.to_values(obj)
        try:
            if self.fast is not None:
                return self.fast.pack(*values.values())
            return bytes(self.compiled.build(values))
        except _PARSE_ERRORS as exc:
            raise MessageError(f"cannot build {self.name}: {exc}") from exc

    def _finish(self, values: list[Any], from_wire: tuple[Any, ...] | None = None) -> Any:
        for i, name, convert in self._from_wire if from_wire is None else from_wire:
            values[i] = convert(name, values[i])
        return self.cls(*values)

    def from_container(self, container: Any) -> Any:
        return self._finish([container[name] for name in self._names])

    def parse(self, payload: bytes) -> Any:
        if len(payload) < self.min_size:
            raise MessageError(
                f"{self.name} needs at least {self.min_size} bytes, frame carries {len(payload)}"
            )
        if self.fixed is not None:
            return self._finish(list(self.fixed.unpack_from(payload)))
        if self.fast is not None:
            return self._finish(list(self.fast.unpack_from(payload)), self._fast_from_wire)
        try:
            container = self.compiled.parse(payload)
        except _PARSE_ERRORS as exc:
            raise MessageError(f"malformed {self.name}: {exc}") from exc
        return self.from_container(container)

    def parse_with_construct(self, payload: bytes) -> Any:
        """The compiled construct path, whatever the layout (for tests and benchmarks)."""
        try:
            return self.from_container(self.compiled.parse(payload))
        except _PARSE_ERRORS as exc:
            raise MessageError(f"malformed {self.name}: {exc}") from exc


def fixed_layout(declaration: Any) -> struct.Struct | None:
    """The `struct.Struct` equivalent of a construct Struct of little-endian integers, if any."""
    codes = []
    for sub in declaration.subcons:
        inner = getattr(sub, "subcon", sub)
        fmt = getattr(inner, "fmtstr", None)
        if not isinstance(inner, FormatField) or not fmt or fmt[0] != "<":
            return None
        codes.append(fmt[1:])
    return struct.Struct("<" + "".join(codes))


class _TrailingArrayLayout:
    """Fixed-size integers followed by a u8-counted array of fixed-layout records.

    PDU_STATUS and CLIP_LIST have this shape; parsing it with compiled construct builds a
    container per item, about 40 us for 16 PDU channels, against 5 us this way.
    """

    def __init__(
        self, head: struct.Struct, item: RecordCodec, item_layout: struct.Struct, array: ArrayOf
    ) -> None:
        self.head = head
        self.item = item
        self.item_layout = item_layout
        self.array = array

    @classmethod
    def derive(cls, record_fields: list[_Field]) -> _TrailingArrayLayout | None:
        if not record_fields or not isinstance(record_fields[-1].meta, ArrayOf):
            return None
        array = record_fields[-1].meta
        head = fixed_layout(Struct(*(f.name / f.subcon for f in record_fields[:-1])))
        item = _CODECS[array.item]
        if head is None or item.fixed is None:
            return None
        return cls(head, item, item.fixed, array)

    def pack(self, *values: Any) -> bytes:
        *head, items = values
        body = b"".join(self.item_layout.pack(*item.values()) for item in items)
        return self.head.pack(*head) + bytes((len(items),)) + body

    def unpack_from(self, payload: bytes) -> list[Any]:
        values = list(self.head.unpack_from(payload))
        start = self.head.size + 1
        count = payload[self.head.size]
        end = start + count * self.item_layout.size
        if count > self.array.max_count:
            raise FieldValueError(
                self.item.name, "count", count, f"at most {self.array.max_count} items"
            )
        if len(payload) < end:
            raise MessageError(f"{count} x {self.item.name} need {end} bytes, got {len(payload)}")
        finish = self.item._finish
        values.append(
            tuple(finish(list(row)) for row in self.item_layout.iter_unpack(payload[start:end]))
        )
        return values


def require_fixed_layout(declaration: Any) -> struct.Struct:
    layout = fixed_layout(declaration)
    if layout is None:
        raise TypeError(f"{declaration!r} is not made of fixed-size little-endian integers")
    return layout


_CODECS: dict[type[Any], RecordCodec] = {}


def codec_of(cls: type[Any]) -> RecordCodec:
    """The codec the @record decorator built for `cls`."""
    return _CODECS[cls]


def encode_body(obj: Any) -> bytes:
    return _CODECS[type(obj)].build(obj)


# What a class body holds when it declares fields and nothing else (3.13 adds the last two).
_DECLARATION = frozenset({
    "__module__", "__qualname__", "__doc__", "__annotations__", "__dict__", "__weakref__",
    "__firstlineno__", "__static_attributes__",
})  # fmt: skip


@dataclass_transform(frozen_default=True)
def record(cls: type[T]) -> type[T]:
    """Make `cls` a record: a frozen msgspec Struct with a codec built from its annotations.

    A Struct, not a dataclass: the class is made in a tenth of the time (31 records at every
    start of the daemon and of each tool took 21 ms as slotted dataclasses), an instance in
    half of it (the receive path makes one per frame), and no instance is tracked by the
    garbage collector: a record holds only numbers, text, enums and tuples of records, so it
    can be part of no reference cycle.
    """
    extra = sorted(set(vars(cls)) - _DECLARATION)
    if cls.__bases__ != (object,) or extra:  # a Struct made from fields alone would drop them
        raise TypeError(
            f"record {cls.__name__} may declare fields only: no base class, default or method "
            f"({', '.join(extra) or 'a base class'})"
        )
    declared = _declared_fields(cls)
    record_fields = [_field_for(cls.__name__, name, hint) for name, hint in declared.items()]
    struct_cls = msgspec.defstruct(
        cls.__name__,
        list(declared.items()),
        module=cls.__module__,
        namespace={"__doc__": cls.__doc__, "__qualname__": cls.__qualname__},
        frozen=True,
        gc=False,
    )
    _CODECS[struct_cls] = RecordCodec(struct_cls, record_fields)
    return cast("type[T]", struct_cls)


def _declared_fields(cls: type[Any]) -> dict[str, Any]:
    """Each field's annotation evaluated in its module, in declaration order: what
    `typing.get_type_hints` gives for a class without bases, at a third of its cost
    (`inspect.get_annotations` costs two thirds)."""
    namespace = vars(sys.modules[cls.__module__])
    return {
        name: eval(hint, namespace) if isinstance(hint, str) else hint
        for name, hint in vars(cls).get("__annotations__", {}).items()
    }


def describe_field(field: _Field) -> tuple[str, str]:
    """(wire type, allowed values) of a field, for the spec and the decoder."""
    base, meta = field.base, field.meta
    if isinstance(meta, Text):
        return "text", f"UTF-8, u8 byte length + bytes, <= {meta.max_bytes} bytes"
    if isinstance(meta, ArrayOf):
        return f"u8 count + {meta.item.__name__}[]", f"<= {meta.max_count} items"
    wire = wire_name(meta.subcon)
    if isinstance(base, type) and issubclass(base, enum.IntFlag):
        return wire, "flags: " + ", ".join(f"0x{m.value:X} {m.name}" for m in base)
    if isinstance(base, type) and issubclass(base, enum.IntEnum):
        return wire, ", ".join(f"{m.value} {m.name}" for m in base)
    if base is bool:
        return wire, "0 or 1"
    if meta.lo is not None or meta.hi is not None:
        lo = meta.lo if meta.lo is not None else 0
        hi = meta.hi if meta.hi is not None else "max"
        return wire, f"{lo} .. {hi}"
    return wire, "any"


def wire_name(subcon: Construct) -> str:
    names = {
        id(U8): "u8", id(U16): "u16", id(U32): "u32", id(U64): "u64",
        id(I8): "i8", id(I16): "i16", id(I32): "i32",
    }  # fmt: skip
    return names.get(id(subcon), repr(subcon))


def _split(hint: Any) -> tuple[Any, Any]:
    if get_origin(hint) is not Annotated:
        raise TypeError(f"field type {hint!r} needs Annotated[..., Wire/Text/ArrayOf]")
    base, *extras = get_args(hint)
    metas = [e for e in extras if isinstance(e, Wire | Text | ArrayOf)]
    if len(metas) != 1:
        raise TypeError(f"field type {hint!r} needs exactly one Wire, Text or ArrayOf")
    return base, metas[0]


def _field_for(record_name: str, name: str, hint: Any) -> _Field:
    base, meta = _split(hint)
    if isinstance(meta, Text):
        subcon, to_wire, from_wire = _text_field(record_name, meta)
    elif isinstance(meta, ArrayOf):
        subcon, to_wire, from_wire = _array_field(record_name, meta)
    elif isinstance(base, type) and issubclass(base, enum.IntFlag):
        subcon, to_wire, from_wire = _flag_field(record_name, base, meta)
    elif isinstance(base, type) and issubclass(base, enum.IntEnum):
        subcon, to_wire, from_wire = _enum_field(record_name, base, meta)
    elif base is bool:
        subcon, to_wire, from_wire = _bool_field(record_name, meta)
    else:
        subcon, to_wire, from_wire = _int_field(record_name, meta)
    return _Field(name, base, meta, subcon, to_wire, from_wire)


_Convert = Callable[[str, Any], Any] | None
_FieldParts = tuple[Construct, _Convert, _Convert]


def _int_field(record_name: str, meta: Wire) -> _FieldParts:
    lo, hi = meta.lo, meta.hi
    if lo is None and hi is None:
        return meta.subcon, None, None
    lo_ = lo if lo is not None else -(2**63)
    hi_ = hi if hi is not None else 2**64
    allowed = f"{lo} .. {hi}"

    def check(field: str, value: Any) -> Any:
        if not lo_ <= value <= hi_:
            raise FieldValueError(record_name, field, value, allowed)
        return value

    return meta.subcon, check, check


def _bool_field(record_name: str, meta: Wire) -> _FieldParts:
    def to_wire(field: str, value: Any) -> int:
        if value not in (0, 1):
            raise FieldValueError(record_name, field, value, "0 or 1")
        return int(value)

    def from_wire(field: str, value: Any) -> bool:
        return bool(to_wire(field, value))

    return meta.subcon, to_wire, from_wire


def _enum_field(record_name: str, enum_cls: type[enum.IntEnum], meta: Wire) -> _FieldParts:
    members = {int(m): m for m in enum_cls}
    allowed = f"one of {sorted(members)} ({enum_cls.__name__})"

    def from_wire(field: str, value: Any) -> enum.IntEnum:
        try:
            return members[value]
        except (KeyError, TypeError):
            raise FieldValueError(record_name, field, value, allowed) from None

    def to_wire(field: str, value: Any) -> int:
        return int(from_wire(field, value))

    return meta.subcon, to_wire, from_wire


def _flag_field(record_name: str, flag_cls: type[enum.IntFlag], meta: Wire) -> _FieldParts:
    mask = 0
    for member in flag_cls:
        mask |= int(member)
    allowed = f"bits of {flag_cls.__name__} (mask 0x{mask:X})"

    def to_wire(field: str, value: Any) -> int:
        if int(value) & ~mask:
            raise FieldValueError(record_name, field, value, allowed)
        return int(value)

    def from_wire(field: str, value: Any) -> enum.IntFlag:
        return flag_cls(to_wire(field, value))

    return meta.subcon, to_wire, from_wire


def _text_field(record_name: str, meta: Text) -> _FieldParts:
    limit = meta.max_bytes
    allowed = f"UTF-8 text of at most {limit} bytes"

    def check(field: str, value: Any) -> str:
        if not isinstance(value, str) or len(value.encode("utf-8")) > limit:
            raise FieldValueError(record_name, field, value, allowed)
        return value

    return PascalString(Int8ul, "utf8"), check, check


def _array_field(record_name: str, meta: ArrayOf) -> _FieldParts:
    item_codec = _CODECS.get(meta.item)
    if item_codec is None:
        raise TypeError(f"{meta.item.__name__} must be a @record declared before {record_name}")
    limit = meta.max_count
    allowed = f"at most {limit} items"

    def to_wire(field: str, value: Any) -> list[dict[str, Any]]:
        if len(value) > limit:
            raise FieldValueError(record_name, field, len(value), allowed)
        return [item_codec.to_values(item) for item in value]

    def from_wire(field: str, value: Any) -> tuple[Any, ...]:
        if len(value) > limit:
            raise FieldValueError(record_name, field, len(value), allowed)
        return tuple(item_codec.from_container(item) for item in value)

    return PrefixedArray(Int8ul, item_codec.struct), to_wire, from_wire


def _min_size(struct_: Any) -> int:
    """Smallest body that could parse: variable fields count as their length prefix."""
    total = 0
    for sub in struct_.subcons:
        try:
            total += sub.sizeof()
        except ConstructError:
            total += 1
    return total


_PLAIN = frozenset({int, bool, float, str, type(None)})  # JSON as they are


def to_jsonable(value: Any) -> Any:
    """Plain JSON data for a record: enums by name, flags as name lists, nested records.

    A record's plain fields (most of them) are taken as they are, without a call each: a
    device's state is built from three records twice a second per device."""
    codec = _CODECS.get(value.__class__)
    if codec is not None:
        return {
            name: field if (field := getattr(value, name)).__class__ in _PLAIN
            else to_jsonable(field)
            for name in codec._names
        }  # fmt: skip
    if isinstance(value, enum.IntFlag):
        return [m.name.lower() for m in type(value) if m in value and m.name]
    if isinstance(value, enum.Enum):
        return value.name.lower()
    if isinstance(value, tuple | list):
        return [to_jsonable(v) for v in value]
    return value
