"""`make bench`: every benchmark, one after the other, figures on stdout as markdown.

`python -m bench.run --quick` runs each in its short mode (a check that they all run, not
figures to publish). Each is also runnable alone: `python -m bench.<name> [--quick]`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from bench import (
    archive,
    background,
    codec,
    daemon_scale,
    dailies,
    gear_codec,
    groundlink,
    jam,
    monitor,
    reaction,
    rtt,
    sim_scale,
    startup,
)
from bench.machine import as_installed

BENCHMARKS: dict[str, Callable[[list[str] | None], None]] = {
    "codec": codec.main,
    "gear_codec": gear_codec.main,
    "rtt": rtt.main,
    "sim_scale": sim_scale.main,
    "daemon_scale": daemon_scale.main,
    "background": background.main,
    "startup": startup.main,
    "groundlink": groundlink.main,
    "reaction": reaction.main,
    "jam": jam.main,
    "monitor": monitor.main,
    "archive": archive.main,
    "dailies": dailies.main,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="every benchmark's short mode")
    parser.add_argument("only", nargs="*", help=f"these only, of: {', '.join(BENCHMARKS)}")
    args = parser.parse_args()
    unknown = [name for name in args.only if name not in BENCHMARKS]
    if unknown:
        parser.error(f"no benchmark named {', '.join(unknown)}")
    as_installed()
    for name in args.only or BENCHMARKS:
        started = time.monotonic()
        print(f"## bench.{name}\n", flush=True)
        BENCHMARKS[name](["--quick"] if args.quick else [])
        print(f"\n({time.monotonic() - started:.0f} s)\n", flush=True)


if __name__ == "__main__":
    main()
