"""Every problem in a configuration at once, each as the key's path and a plain sentence.

msgspec stops at the first error and says it in a programmer's words ("Expected `str`
matching regex ..."). `cupola daemon --check` is read by the crew, so this walks the TOML
against the config's types itself: each key is checked on its own, unknown keys and
missing ones are named, and a failed constraint is said from its bounds ("a whole number
from 1200 to 12000000") or its `Meta(description=...)` ("HH:MM, 00:00 to 23:59").
Non-finite numbers (inf, nan) are refused everywhere: no setting means "unlimited".
"""

from __future__ import annotations

import datetime
import functools
import math
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

import msgspec

_KINDS: dict[object, str] = {
    int: "a whole number",
    float: "a number",
    str: "text",
    bool: "true or false",
    datetime.datetime: "a date and time such as 2026-11-27T14:00:00Z",
    datetime.date: "a date such as 2026-11-27",
}


def problems_in(value: Any, schema: Any, path: str = "") -> list[str]:
    """What is wrong with `value` (TOML decoded without types) as a `schema`, or nothing."""
    base, metas = _unwrap(schema)
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{_at(path)}must be a finite number, not {value}"]
    if _is_optional(base):
        if value is None:
            return []
        base = next(a for a in get_args(base) if a is not type(None))
        return problems_in(value, _rewrap(base, metas), path)
    if isinstance(base, type) and issubclass(base, msgspec.Struct):
        return _struct_problems(value, base, path)
    origin = get_origin(base)
    if origin is list:
        if not isinstance(value, list):
            return [f"{_at(path)}must be a list ([[...]] tables or [a, b])"]
        (item,) = get_args(base)
        found = [p for i, v in enumerate(value) for p in problems_in(v, item, f"{path}[{i}]")]
        least = next((m.min_length for m in metas if m.min_length), 0)
        if len(value) < least:
            found.append(f"{_at(path)}needs at least {least} entr{'y' if least == 1 else 'ies'}")
        return found
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{_at(path)}must be a table of settings"]
        _, item = get_args(base)
        found = [p for k, v in value.items() for p in problems_in(v, item, f"{path}.{k}")]
        least = next((m.min_length for m in metas if m.min_length), 0)
        if len(value) < least:
            found.append(f"{_at(path)}needs at least {least} entr{'y' if least == 1 else 'ies'}")
        return found
    try:
        msgspec.convert(value, type=schema)
    except msgspec.ValidationError:
        return [f"{_at(path)}{_shown(value)} is not {_expected(base, metas)}"]
    return []


class _Unusable(Exception):
    """A required setting is wrong: the table holding it cannot be used at all."""


def usable(value: Any, schema: Any) -> tuple[Any, dict[str, list[int]]]:
    """`value` without its wrong settings (so defaults apply), for checks of what is left.

    A table whose required setting is wrong is left out of its list; `kept[path]` lists the
    original index of each entry left in the list at `path`, so problems found in what is
    left can still name the key as the file has it.
    """
    kept: dict[str, list[int]] = {}
    try:
        return _prune(value, schema, "", kept), kept
    except _Unusable:
        return {}, kept


def _prune(value: Any, schema: Any, path: str, kept: dict[str, list[int]]) -> Any:
    base, _ = _unwrap(schema)
    if _is_optional(base) and value is not None:
        base = next(a for a in get_args(base) if a is not type(None))
    if isinstance(base, type) and issubclass(base, msgspec.Struct) and isinstance(value, dict):
        fields, hints = _layout(base)
        out = {}
        for key, field in fields.items():
            if key not in value:
                if field.required:
                    raise _Unusable
                continue
            try:
                out[key] = _prune(value[key], hints[field.name], _join(path, key), kept)
            except _Unusable:
                if field.required:
                    raise
        return out
    if get_origin(base) is list and isinstance(value, list):
        (item,) = get_args(base)
        items = []
        for index, entry in enumerate(value):
            try:
                items.append(_prune(entry, item, f"{path}[{index}]", kept))
            except _Unusable:
                continue
            kept.setdefault(path, []).append(index)
        return items
    if problems_in(value, schema, path):
        raise _Unusable
    return value


@functools.cache
def _layout(
    schema: type[msgspec.Struct],
) -> tuple[dict[str, msgspec.structs.FieldInfo], dict[str, Any]]:
    """A settings table's fields by key, and their types: worked out once per type. Resolving
    them evaluates each annotation, which for 64 devices took a fifth of a second of the
    daemon's start when done per device."""
    fields = {f.encode_name: f for f in msgspec.structs.fields(schema)}
    return fields, typing.get_type_hints(schema, include_extras=True)


def _struct_problems(value: Any, schema: type[msgspec.Struct], path: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{_at(path)}must be a table of settings"]
    fields, hints = _layout(schema)
    found = []
    for key in value:
        if key not in fields:
            known = ", ".join(sorted(fields))
            found.append(f"{_join(path, key)} is not a known setting (known here: {known})")
    for key, field in fields.items():
        where = _join(path, key)
        if key not in value:
            if field.required:
                found.append(f"{where} is missing; it is required")
            continue
        found += problems_in(value[key], hints[field.name], where)
    return found


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _at(path: str) -> str:
    return f"{path}: " if path else ""


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _unwrap(schema: Any) -> tuple[Any, list[msgspec.Meta]]:
    if get_origin(schema) is typing.Annotated:
        base, *extras = get_args(schema)
        return base, [m for m in extras if isinstance(m, msgspec.Meta)]
    return schema, []


def _rewrap(base: Any, metas: list[msgspec.Meta]) -> Any:
    return typing.Annotated[(base, *metas)] if metas else base


def _is_optional(base: Any) -> bool:
    return get_origin(base) in (Union, types.UnionType) and type(None) in get_args(base)


def _expected(base: Any, metas: list[msgspec.Meta]) -> str:
    """What a value must be, in words: its kind, then its bounds or its description."""
    if get_origin(base) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(base))
    described = [m.description for m in metas if m.description]
    if described:  # a described value says what it is itself: "a time of day as HH:MM"
        return described[0]
    words = [_KINDS.get(base, getattr(base, "__name__", str(base)))]
    for meta in metas:
        if meta.pattern:
            words.append("in the expected form")
        bounds = _bounds(meta)
        if bounds:
            words.append(bounds)
    return " ".join(words)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _bounds(meta: msgspec.Meta) -> str:
    if meta.ge is not None and meta.le is not None:
        return f"from {_number(meta.ge)} to {_number(meta.le)}"
    low = f"at least {_number(meta.ge)}" if meta.ge is not None else ""
    low = f"above {_number(meta.gt)}" if meta.gt is not None else low
    high = f"at most {_number(meta.le)}" if meta.le is not None else ""
    high = f"below {_number(meta.lt)}" if meta.lt is not None else high
    return " and ".join(w for w in (low, high) if w)
