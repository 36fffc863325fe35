"""When the next status poll runs: on a fixed grid, late rather than skipped.

A poll that ends after its successor was due runs that successor at once (late, and counted
in the lateness histogram) instead of waiting a whole period more: one slow reply must not
cost the device a sample. Only when the agent is a whole period or more behind are the polls
it can no longer make skipped, counted as missed, and the grid kept.
"""

from __future__ import annotations


def poll_after(due: float, now: float, period: float) -> tuple[float, int]:
    """The instant the poll after the one `due` runs, and how many whole periods it skips."""
    due += period
    behind = now - due
    if behind < period:
        return due, 0
    skipped = int(behind / period)
    return due + skipped * period, skipped
