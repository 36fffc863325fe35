"""`make bench`: every benchmark, one after the other, figures on stdout."""

from __future__ import annotations

import asyncio

from bench import codec, groundlink, reaction, sim_scale


def main() -> None:
    codec.main()
    print()
    rows = [asyncio.run(sim_scale.measure(n, 20.0, 10.0, 115200)) for n in (1, 10, 40)]
    print("Simulator scale: `cupola sim` CPU while every device is polled")
    print(sim_scale.report(rows))
    print()
    groundlink.main()
    print()
    reaction.main()


if __name__ == "__main__":
    main()
