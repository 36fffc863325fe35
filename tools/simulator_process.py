"""`cupola sim` as a child process, for the demo, the scenario bench and the benchmarks."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from hil.processes import ProcessGroup


def cupola_argv(*args: str) -> list[str]:
    """The `cupola` command line run by this same interpreter (no installed script needed)."""
    return [sys.executable, "-m", "tools.cli", *args]


def start_simulator(
    group: ProcessGroup,
    bench_file: Path,
    run_dir: Path,
    devices: int,
    *,
    stderr: IO[bytes] | int | None = None,
    timeout: float = 15.0,
) -> tuple[subprocess.Popen[bytes], list[dict[str, str]]]:
    """Start the bench: its process, and each device's announcement (device, kind, path).

    Raises RuntimeError if the simulator dies or stays silent, rather than blocking forever.
    """
    sim = group.start(
        "sim",
        cupola_argv("sim", "--config", str(bench_file), "--run-dir", str(run_dir)),
        stdout=subprocess.PIPE,
        stderr=stderr,
    )
    assert sim.stdout is not None
    entries: list[dict[str, str]] = []
    deadline = time.monotonic() + timeout
    while len(entries) < devices:
        if time.monotonic() > deadline or sim.poll() is not None:
            raise RuntimeError(f"the simulators did not start from {bench_file}; see their log")
        line = sim.stdout.readline()
        if line:
            entries.append(json.loads(line))
    return sim, entries
