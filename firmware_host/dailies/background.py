"""Work the daemon starts beside itself runs at the lowest CPU priority.

The proxy transcodes (ffmpeg takes every core it can get) and the card offloads (copying and
hashing footage) are the heaviest work on the onboard computer, and the daemon starts them
during the shoot. At the daemon's own priority a transcode took the CPU from its 20 Hz polls:
64 devices beside the product's proxy transcode, back to back, missed 64 to 848 polls in 30 s
windows, poll lateness p99 in the 100 ms bucket (`python -m bench.background`); with the
transcodes at niceness 19, none, p99 within 50 ms. At 19 they still get every cycle the daemon
leaves.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence

NICENESS = 19  # the lowest priority


def in_background(argv: Sequence[str]) -> list[str]:
    """`argv` run through coreutils' `nice` at niceness 19, whatever the daemon's own: the
    priority is set before the program starts, so every thread it starts has it too.

    Raises FileNotFoundError if the program is not on PATH, as starting it directly would:
    `nice` itself would start and only say so in its exit status (127), which a caller would
    take for the program failing (a proxy given up) instead of not being there (retried)."""
    program = shutil.which(argv[0])
    if program is None:
        raise FileNotFoundError(f"{argv[0]}: not found on PATH")
    increment = max(0, NICENESS - os.nice(0))  # `nice -n` adds to the daemon's own niceness
    return ["nice", "-n", str(increment), program, *argv[1:]]
