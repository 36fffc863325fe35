"""The ground monitor keeping up with a node, in one run.

- absorb: real messages (the nominal scenario's capture, every kind) fed to the monitor's
  view, beside decoding the same payloads and nothing else (the floor);
- redraw: the whole screen redrawn (what happens twice a second) with 5 and with 64
  devices and a full event log, headless; against the 500 ms between redraws.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import statistics
import time
from pathlib import Path

from bench.machine import describe
from protocols import ground
from tools.monitor.app import MonitorApp
from tools.monitor.replay import load_capture
from tools.monitor.view import EVENTS_KEPT, NodeView
from tools.scenario.runner import NODE

CAPTURE = Path(__file__).resolve().parents[1] / "tests" / "tools" / "captures" / "nominal.jsonl"
ROUNDS = 40


def _messages() -> list[tuple[str, bytes]]:
    out = []
    for line in CAPTURE.read_text().splitlines():
        entry = json.loads(line)
        if "message" in entry:
            out.append((entry["topic"], json.dumps(entry["message"]).encode()))
    return out


def absorb_rates() -> tuple[float, float, int]:
    """(view messages/s, decode-only messages/s, messages per round)."""
    messages = _messages()
    started = time.perf_counter()
    for _ in range(ROUNDS):
        for _, payload in messages:
            ground.decode(payload)
    floor = ROUNDS * len(messages) / (time.perf_counter() - started)
    view = NodeView(NODE)
    started = time.perf_counter()
    for _ in range(ROUNDS):
        for topic, payload in messages:
            view.absorb(topic, payload, 0.0)
    rate = ROUNDS * len(messages) / (time.perf_counter() - started)
    return rate, floor, len(messages)


def _view(devices: int) -> tuple[NodeView, float]:
    view = NodeView(NODE)
    last = load_capture(CAPTURE, view)
    camera = view.devices["cam-a"]
    for n in range(devices - len(view.devices)):
        clone = copy.deepcopy(camera)
        clone["device"] = f"cam-{n:02d}"
        view.devices[clone["device"]] = clone
    template = view.events[-1]
    for n in range(EVENTS_KEPT - len(view.events)):
        view.events.append(dataclasses.replace(template, seq=view.sequence.last_seq + 1 + n))
    return view, last


async def redraw_ms(devices: int, repeats: int = 30) -> tuple[float, float]:
    """(p50, max) milliseconds for one full redraw."""
    view, last = _view(devices)
    app = MonitorApp(view, clock=lambda: last)
    times = []
    async with app.run_test(size=(160, 48)):
        for _ in range(repeats):
            view.revision += 1  # everything changed: the tables are rebuilt too
            started = time.perf_counter()
            app.redraw()
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times)


def main() -> None:
    print(describe())
    rate, floor, per_round = absorb_rates()
    print(f"Monitor view: {per_round} captured messages x {ROUNDS}")
    print(f"  absorb into the view   {rate:10,.0f} msg/s")
    print(f"  decode only (floor)    {floor:10,.0f} msg/s   view/floor {rate / floor:.2f}x")
    print("Monitor redraw (whole screen, 5,000 events kept), every 500 ms")
    for devices in (5, 64):
        p50, worst = asyncio.run(redraw_ms(devices))
        print(f"  {devices:3d} devices  p50 {p50:6.1f} ms  max {worst:6.1f} ms"
              f"  ({p50 / 500:.1%} of the interval)")  # fmt: skip


if __name__ == "__main__":
    main()
