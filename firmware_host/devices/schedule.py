"""When the next status poll runs: on a fixed grid shared by every native device, late rather
than skipped.

The grid is the multiples of the period on the loop's clock, whatever the instant a device came
online: devices polled at one rate are polled together. One wake-up then writes every request
and the replies are read in a burst, where polls at scattered phases cost a wake-up, a pass
through the event loop and a simulator (or UART) turnaround each. On 64 devices at 20 Hz the
bare link layer costs 2.7x the CPU per poll at scattered phases (BENCHMARKS.md, sixth pass).
A native device has its own line, so polls in step do not wait for one another's bytes;
real gear keeps its own phase (lights on one DMX widget share its line).

A poll that ends after its successor was due runs that successor at once (late, and counted
in the lateness histogram) instead of waiting a whole period more: one slow reply must not
cost the device a sample. Only when the agent is a whole period or more behind are the polls
it can no longer make skipped, counted as missed, and the grid kept.
"""

from __future__ import annotations

import math


def grid_tick(now: float, period: float) -> float:
    """The shared grid's tick at or before `now`: a device that comes online is polled at once,
    then at the grid's next tick and on the grid from there."""
    return math.floor(now / period) * period


def poll_after(due: float, now: float, period: float) -> tuple[float, int]:
    """The instant the poll after the one `due` runs, and how many whole periods it skips."""
    due += period
    behind = now - due
    if behind < period:
        return due, 0
    skipped = int(behind / period)
    return due + skipped * period, skipped
