"""What a figure was measured on, printed with every benchmark run."""

from __future__ import annotations

import compileall
import os
import platform
import sys
import time
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
