"""Work the daemon starts beside itself runs at the lowest CPU priority.

The proxy transcodes (ffmpeg takes every core it can get) and the card offloads (copying and
hashing footage) are the heaviest work on the onboard computer, and the daemon starts them
during the shoot. At the daemon's own priority a transcode took the CPU from its 20 Hz polls:
64 devices beside a loop of proxy transcodes missed 20 and 288 polls in two 30 s windows, with
poll lateness p99 in the 50 ms bucket; with the transcodes at niceness 19, none, and p99 in
the 20 ms bucket. At 19 they still get every cycle the daemon leaves.
"""

from __future__ import annotations

from collections.abc import Sequence

NICENESS = 19  # the lowest priority


def in_background(argv: Sequence[str]) -> list[str]:
    """`argv` run through coreutils' `nice`: the priority is set before the program starts,
    so every thread it starts has it too."""
    return ["nice", "-n", str(NICENESS), *argv]
