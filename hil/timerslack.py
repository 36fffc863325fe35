"""The simulator's timers on 1 ns of Linux timer slack, so emulated cables keep wire time.

Linux lets a sleeping thread wake up to its timer slack late (50 us by default) so that
wake-ups can be merged. The emulated cable paces every byte with timers: at 921,600 baud a
round trip's wire time is 0.35 ms, and the default slack, paid at each step, was a large part
of the excess over it. prctl(PR_SET_TIMERSLACK) sets the calling thread's slack (threads made
later inherit it); on a system without it the simulator runs on the default slack.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from pathlib import Path

PR_SET_TIMERSLACK = 29
SLACK_NS = 1


def precise_timer_slack() -> bool:
    """Set this thread's timer slack to 1 ns; True if the kernel took it."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    return bool(libc.prctl(PR_SET_TIMERSLACK, SLACK_NS, 0, 0, 0) == 0)


def timer_slack_ns(pid: int | str = "self") -> int | None:
    """A process's timer slack as the kernel reports it (None where it does not)."""
    path = Path(f"/proc/{pid}/timerslack_ns")
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None
