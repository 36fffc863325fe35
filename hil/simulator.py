"""`cupola sim`: run a bench until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from hil.bench import Bench, BenchSpec, load_bench
from hil.control import ControlServer
from hil.precise_selector import precise_selector
from hil.timerslack import precise_timer_slack

log = logging.getLogger(__name__)


async def serve_bench(spec: BenchSpec, run_dir: Path, stop: asyncio.Event) -> None:
    bench = Bench(spec, run_dir)
    control = ControlServer(bench, run_dir / "control.sock")
    await bench.start()
    await control.start()
    try:
        for line in bench.announce():
            sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        await control.stop()
        await bench.stop()


def precise_timer_loop(spin_below_s: float = 0.0) -> asyncio.AbstractEventLoop:
    """An event loop whose timers fire within microseconds, not a millisecond late: the
    emulated cables pace bytes with timers (hil/precise_selector.py)."""
    return asyncio.SelectorEventLoop(precise_selector(spin_below_s))


def run(config: Path, run_dir: Path | None) -> int:
    spec = load_bench(config)
    precise_timer_slack()  # the cables' pacing timers wake on time (hil/timerslack.py)
    own_dir = run_dir is None
    directory = Path(tempfile.mkdtemp(prefix="cupola-bench-")) if own_dir else run_dir
    assert directory is not None

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve_bench(spec, directory, stop)

    try:
        spin_below_s = spec.bench.spin_below_us / 1e6
        with asyncio.Runner(loop_factory=lambda: precise_timer_loop(spin_below_s)) as runner:
            runner.run(main())
    finally:
        if own_dir:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            for entry in spec.devices:
                with contextlib.suppress(FileNotFoundError):
                    (directory / entry.name).unlink()
    return 0
