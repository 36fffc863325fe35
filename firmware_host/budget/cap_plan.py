"""The cap in force at any moment, from the base cap and the planned changes.

One definition serves both the loop that applies the cap and the hazard rule that guards
every command changing it, so the two can never disagree about what a command would do.
A change is in force from its `at` until its `until` (for ever if it has none); where
several are, the one that started last wins; where none is, the base cap holds. A planned
cut is applied `lead_s` early (the draw is down before the station cuts); nothing is raised
early.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from firmware_host.config import CapChange


@dataclass(frozen=True)
class CapInForce:
    cap_w: float
    reason: str


def _planned(base: CapInForce, timeline: Sequence[CapChange], t: float) -> CapInForce:
    covering = [
        c for c in timeline
        if c.at.timestamp() <= t and (c.until is None or t < c.until.timestamp())
    ]  # fmt: skip
    if not covering:
        return base
    latest = max(covering, key=lambda c: c.at)
    return CapInForce(latest.cap_w, latest.reason)


def in_force(
    base: CapInForce, timeline: Sequence[CapChange], t: float, lead_s: float
) -> CapInForce:
    """The cap at wall time `t`: the planned one, or a cut due within `lead_s` already."""
    now, soon = _planned(base, timeline, t), _planned(base, timeline, t + lead_s)
    return soon if soon.cap_w < now.cap_w else now


def first_raise(
    before: tuple[CapInForce, Sequence[CapChange]],
    after: tuple[CapInForce, Sequence[CapChange]],
    now: float,
    lead_s: float,
) -> tuple[float, float, float] | None:
    """The first moment from `now` at which `after` (a base cap and timeline) puts a higher
    cap in force than `before` would: (when, cap before, cap after), or None if never.

    Both are step functions of time that change only at an `at`, an `until`, or one lead
    before either, so comparing them there and at `now` compares them everywhere."""
    edges = {now}
    for change in (*before[1], *after[1]):
        for edge in (change.at, change.until):
            if edge is not None:
                edges.update({edge.timestamp(), edge.timestamp() - lead_s})
    for t in sorted(e for e in edges if e >= now):
        old = in_force(*before, t, lead_s).cap_w
        new = in_force(*after, t, lead_s).cap_w
        if new > old:
            return t, old, new
    return None
