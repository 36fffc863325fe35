"""Bounded parsing of command messages: size, nesting and integer ranges before anything else.

Anyone who can publish on the command topic reaches this code, so every check here costs
at most a few passes over the bytes at C speed and never recurses: a payload over the size
cap is refused unread, nesting is measured without a parser (so `[` x 200,000 is one cheap
refusal, not a RecursionError), and only then is the JSON decoded. Integers that SQLite
cannot store (above 2^63 - 1) are refused here rather than overflowing deeper down.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from protocols.ground import INT64_MAX, CommandRequest

MAX_PAYLOAD_BYTES = 64 * 1024  # a sequence script fits; a megabyte of steps does not
MAX_DEPTH = 16  # a command nests its arguments a few levels at most

_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_INNERMOST = re.compile(rb"\[\]|\{\}")
_decoder = msgspec.json.Decoder()


class Malformed(ValueError):
    """A message that is not a well-formed command; the text says why, in one line."""


def nesting_within(payload: bytes, limit: int) -> bool:
    """Whether a JSON text nests at most `limit` deep (False too if its brackets do not pair).

    A payload with no more opening brackets than `limit` (every real command) is not scanned
    at all. Otherwise strings are blanked (their brackets are text), then each pass deletes
    the innermost bracket pairs, so the number of passes is the depth: at most `limit` + 1
    passes, each a C-speed substitution over the brackets alone.
    """
    if payload.count(b"[") + payload.count(b"{") <= limit:
        return True
    brackets = _STRINGS.sub(b"", payload).translate(None, _NOT_BRACKETS)
    for _ in range(limit + 1):
        if not brackets:
            return True
        shorter = _INNERMOST.sub(b"", brackets)
        if len(shorter) == len(brackets):
            return False  # unbalanced: no innermost pair left to delete
        brackets = shorter
    return False


def out_of_range(value: Any, path: str = "$") -> str | None:
    """The path of the first integer SQLite cannot store (signed 64-bit), if any."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return path if not -INT64_MAX - 1 <= value <= INT64_MAX else None
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = out_of_range(item, f"{path}.{key}" if isinstance(key, str) else f"{path}[{key}]")
        if found:
            return found
    return None


def decode_fields(payload: bytes) -> dict[str, Any]:
    """The raw fields of a command message (what its signature covers); Malformed if none."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise Malformed(f"malformed command: {len(payload)} bytes, over {MAX_PAYLOAD_BYTES}")
    if not nesting_within(payload, MAX_DEPTH):
        raise Malformed(f"malformed command: nested deeper than {MAX_DEPTH} or unbalanced")
    try:
        raw = _decoder.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise Malformed(f"malformed command: not JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise Malformed("malformed command: not a JSON object")
    return raw


def typed(raw: dict[str, Any]) -> CommandRequest:
    """The command the fields make, every integer storable; Malformed if they make none."""
    try:
        request = msgspec.convert(raw, type=CommandRequest)
    except msgspec.ValidationError as exc:
        raise Malformed(f"malformed command: {exc}") from None
    where = out_of_range(request.args, "$.args")
    if where:
        raise Malformed(f"malformed command: integer at {where} outside the signed 64-bit range")
    return request
