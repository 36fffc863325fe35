"""What a figure was measured on, printed with every benchmark run."""

from __future__ import annotations

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
