"""The ground monitor keeping up with a node, in one run.

- absorb: the real messages of the nominal scenario's capture (births, device states,
  events, telemetry, results) fed to the monitor's view round after round, every stream
  message renumbered each round so none is a duplicate (the view would drop it unread),
  beside decoding the same payloads and nothing else (the floor), the two interleaved in
  passes (medians);
- redraw: what the screen does every 500 ms, timed until the frame is on screen: half a
  second has passed (every age moves), every device sent a new state (its temperature and
  draw moved) and one new event arrived, then `redraw()` fills the widgets, then Textual's
  layout and render, and the frame encoded for the terminal (done here: the headless driver
  writes nothing, and so skips it): up to one of the screen's 1/60 s update ticks
  included, as on a real screen. 5 and 64 devices, a full event log. Beside it, when
  `pilot.pause()` returned (it waits for the screen to go idle, polling every 20 ms: the
  test harness's quantum, not the screen's), and `pilot.pause()` alone with nothing changed.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import dataclasses
import json
import statistics
import time
from pathlib import Path
from typing import Any

from rich.console import RenderableType
from textual._compositor import CompositorUpdate
from textual.screen import Screen

import tools.monitor.app
from bench.machine import describe
from protocols import ground
from tools.monitor.app import REDRAW_S, MonitorApp
from tools.monitor.replay import load_capture
from tools.monitor.view import EVENTS_KEPT, NodeView
from tools.scenario.runner import NODE

CAPTURE = Path(__file__).resolve().parents[1] / "tests" / "tools" / "captures" / "nominal.jsonl"


def _captured() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for line in CAPTURE.read_text().splitlines():
        entry = json.loads(line)
        if "message" in entry:
            out.append((entry["topic"], entry["message"]))
    return out


def fresh_rounds(rounds: int) -> list[tuple[str, bytes]]:
    """The capture `rounds` times over, each round's stream numbered after the last's."""
    captured = _captured()
    step = max(m["seq"] for _, m in captured if m.get("seq") is not None)
    out = []
    for n in range(rounds):
        for topic, message in captured:
            seq = message.get("seq")
            renumbered = message if seq is None else {**message, "seq": seq + n * step}
            out.append((topic, json.dumps(renumbered).encode()))
    return out


def absorb_rates(rounds: int, passes: int = 5) -> dict[str, Any]:
    """View and decode-only messages/s over the same fresh messages, interleaved: `passes`
    times decoding, then a new view absorbing, so a noisy moment hits both; medians, and
    what the last view kept."""
    messages = fresh_rounds(rounds)
    floors, rates = [], []
    for _ in range(passes):
        started = time.perf_counter()
        for _, payload in messages:
            ground.decode(payload)
        floors.append(len(messages) / (time.perf_counter() - started))
        view = NodeView(NODE)
        started = time.perf_counter()
        for topic, payload in messages:
            view.absorb(topic, payload, 0.0)
        rates.append(len(messages) / (time.perf_counter() - started))
    return {
        "messages": len(messages),
        "passes": passes,
        "rate": statistics.median(rates),
        "floor": statistics.median(floors),
        "ratios": [rate / floor for rate, floor in zip(rates, floors, strict=True)],
        "duplicates": view.sequence.duplicates,
        "malformed": view.malformed,
        "received": view.received,
    }


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


class _FramedMonitor(MonitorApp):
    """The monitor, noting when each frame is ready for the terminal."""

    # the monitor's own stylesheet: a relative path would be looked up beside this module
    CSS_PATH = str(Path(tools.monitor.app.__file__).with_name("monitor.tcss"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.frames: list[float] = []  # perf_counter() as each frame was ready

    def _display(self, screen: Screen[Any], renderable: RenderableType | None) -> None:
        super()._display(screen, renderable)
        if renderable is None or self._batch_count:  # nothing displayed (as Textual decides)
            return
        if isinstance(renderable, CompositorUpdate):  # what a terminal's driver would write
            renderable.render_segments(self.console)
        self.frames.append(time.perf_counter())


async def redraw_ms(devices: int, repeats: int = 30) -> tuple[float, float, float, float]:
    """(p50, max) milliseconds from a changed view to its frame ready for the terminal, the
    p50 until `pilot.pause()` returned, and the p50 of `pilot.pause()` with nothing changed."""
    view, last = _view(devices)
    now = [last]
    app = _FramedMonitor(view, clock=lambda: now[0], redraw_every_s=None)  # the bench redraws
    template = view.events[-1]
    times, paused, floor = [], [], []
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        for n in range(repeats):
            started = time.perf_counter()
            await pilot.pause()
            floor.append((time.perf_counter() - started) * 1000)
            now[0] += REDRAW_S
            for snapshot in view.devices.values():
                status = snapshot.get("status") or {}
                if status.get("temperature_cdeg") is not None:
                    status["temperature_cdeg"] += 7
                if status.get("draw_mw") is not None:
                    status["draw_mw"] += 130
                snapshot["status_at"] = now[0]
            view.events.append(dataclasses.replace(template, seq=(template.seq or 0) + 100_000 + n))
            view.revision += 1
            app.frames.clear()
            started = time.perf_counter()
            app.redraw()
            await pilot.pause()  # messages handled, layout, render: the frame is out by now
            paused.append((time.perf_counter() - started) * 1000)
            if not app.frames:
                raise RuntimeError("a redraw that changed the view drew no frame")
            times.append((app.frames[-1] - started) * 1000)
    return statistics.median(times), max(times), statistics.median(paused), statistics.median(floor)


def report(
    absorb: dict[str, Any], redraws: dict[int, tuple[float, float, float, float]], rounds: int
) -> str:
    interval_ms = REDRAW_S * 1000
    lines = [
        f"machine: {describe()}",
        f"setting: {absorb['messages']:,} captured messages ({rounds} rounds, stream renumbered "
        f"each round); redraw every {interval_ms:.0f} ms (REDRAW_S), 160x48 headless terminal, "
        f"{EVENTS_KEPT:,} events kept",
        "",
        "| what | figure |",
        "| --- | ---: |",
        f"| view absorbs | {absorb['rate']:,.0f} msg/s |",
        f"| decoding alone (floor) | {absorb['floor']:,.0f} msg/s |",
        f"| view / floor (medians of {absorb['passes']} interleaved passes) | "
        f"{absorb['rate'] / absorb['floor']:.2f}x (per pass: "
        f"{', '.join(f'{r:.2f}x' for r in absorb['ratios'])}) |",
        f"| dropped as duplicates / malformed | {absorb['duplicates']} / {absorb['malformed']} |",
    ]
    for devices, (p50, worst, paused, idle) in redraws.items():
        lines.append(
            f"| redraw to frame on screen, {devices} devices | p50 {p50:.1f} ms, max "
            f"{worst:.1f} ms ({p50 / interval_ms:.1%} of the interval; `pilot.pause()` "
            f"returned at p50 {paused:.1f} ms, and takes {idle:.1f} ms with nothing changed) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="5 rounds, 5 redraws")
    args = parser.parse_args(argv)
    rounds, repeats = (5, 5) if args.quick else (40, 30)
    absorb = absorb_rates(rounds)
    redraws = {n: asyncio.run(redraw_ms(n, repeats)) for n in (5, 64)}
    print("The ground monitor: absorbing a node's messages, and redrawing to the screen")
    print(report(absorb, redraws, rounds))


if __name__ == "__main__":
    main()
