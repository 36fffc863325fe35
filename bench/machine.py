"""What a figure was measured on, printed with every benchmark run."""

from __future__ import annotations

import compileall
import contextlib
import os
import platform
import sys
import time
from collections.abc import Iterator
from pathlib import Path


def describe() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{cpu}, {os.cpu_count()} cores; {platform.system()} {platform.release()}; "
        f"Python {sys.version.split()[0]}; {time.strftime('%Y-%m-%d')}"
    )


def as_installed() -> None:
    """Run as an installed Cupola runs: its modules compiled (pip compiles them at install),
    and every process this run starts free to use them. A machine that sets
    PYTHONDONTWRITEBYTECODE would otherwise time the compiling of every module at every start
    (about 0.2 s of a daemon's start), which no installed Cupola does."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False
    root = Path(__file__).resolve().parent.parent
    for package in ("firmware_host", "protocols", "hil", "tools", "bench"):
        compileall.compile_dir(root / package, quiet=1)


@contextlib.contextmanager
def devices_apart(*pids: int) -> Iterator[str]:
    """For the block, the processes standing in for devices (`pids`) on the last core and this
    process on the others; yields the placement, for the report. This process's own placement
    is restored after (the processes it starts later inherit it).

    A real device is other hardware: it takes none of the client's CPU. Left to the scheduler,
    the simulator and the client sometimes come to share a core; the pair then preempt each
    other on every exchange and both pay for it in CPU (a Cupola PING measured 26 us with the
    two on separate cores and 42 us after they had come to share one, in the same run).
    One core: nothing to place."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        yield "client and simulated devices share the only core"
        return
    for pid in pids:
        os.sched_setaffinity(pid, {cores[-1]})
    os.sched_setaffinity(0, set(cores[:-1]))
    try:
        yield f"simulated devices on core {cores[-1]}, the client on the other" + "s" * (
            len(cores) > 2
        )
    finally:
        os.sched_setaffinity(0, set(cores))
