"""`make bench`: every benchmark, one after the other, figures on stdout."""

from __future__ import annotations

import asyncio

from bench import codec, daemon_scale, dailies, groundlink, monitor, reaction, rtt, sim_scale


def main() -> None:
    codec.main()
    print()
    rtt.main()
    print()
    rows = [asyncio.run(sim_scale.measure(n, 20.0, 10.0, 115200)) for n in (1, 10, 40)]
    print("Simulator scale: `cupola sim` CPU while every device is polled")
    print(sim_scale.report(rows))
    print()
    print("The daemon polling every device at 20 Hz (cables at 115,200 baud)")
    print(daemon_scale.report(daemon_scale.measure([1, 8, 32, 64], 10.0)))
    print()
    groundlink.main()
    print()
    reaction.main()
    print()
    monitor.main()
    print()
    dailies.main()


if __name__ == "__main__":
    main()
