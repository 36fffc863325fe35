"""Hypothesis strategies derived from the protocol's own declarations."""

from __future__ import annotations

import enum
import functools
import operator
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st

from protocols.catalogue import COMMANDS, EVENTS
from protocols.messages.common import Nack
from protocols.records import ArrayOf, Text, Wire, codec_of

# For a property parametrized over every record or command: a third of the profile's examples
# for each of them (30 by default: some 3,000 per property across the catalogue; 600 each
# under HYPOTHESIS_PROFILE=explore).
per_case = settings(max_examples=max(10, settings.default.max_examples * 3 // 10))

_FORMAT_BOUNDS = {
    "B": (0, 2**8 - 1),
    "H": (0, 2**16 - 1),
    "I": (0, 2**32 - 1),
    "L": (0, 2**32 - 1),
    "Q": (0, 2**64 - 1),
    "b": (-(2**7), 2**7 - 1),
    "h": (-(2**15), 2**15 - 1),
    "i": (-(2**31), 2**31 - 1),
    "l": (-(2**31), 2**31 - 1),
    "q": (-(2**63), 2**63 - 1),
}


def wire_bounds(meta: Wire) -> tuple[int, int]:
    """What the wire type can carry, whatever the documented range."""
    return _FORMAT_BOUNDS[meta.subcon.fmtstr[-1]]


def _field(field: Any) -> st.SearchStrategy[Any]:
    meta, base = field.meta, field.base
    if isinstance(meta, Text):
        return st.text(max_size=meta.max_bytes).filter(
            lambda s: len(s.encode("utf-8")) <= meta.max_bytes
        )
    if isinstance(meta, ArrayOf):
        return st.lists(record(meta.item), max_size=meta.max_count).map(tuple)
    if isinstance(base, type) and issubclass(base, enum.IntFlag):
        return st.sets(st.sampled_from(list(base))).map(
            lambda members: functools.reduce(operator.or_, members, base(0))
        )
    if isinstance(base, type) and issubclass(base, enum.IntEnum):
        return st.sampled_from(list(base))
    if base is bool:
        return st.booleans()
    lo, hi = wire_bounds(meta)
    return st.integers(
        meta.lo if meta.lo is not None else lo, meta.hi if meta.hi is not None else hi
    )


@functools.cache
def record(cls: type[Any]) -> st.SearchStrategy[Any]:
    """Any valid instance of a record class."""
    return st.builds(cls, **{f.name: _field(f) for f in codec_of(cls).fields})


def all_bodies() -> list[type[Any]]:
    bodies: list[type[Any]] = [Nack]
    for command in COMMANDS.values():
        bodies += [command.request, command.reply]
    bodies += [event.body for event in EVENTS.values()]
    return list(dict.fromkeys(bodies))
