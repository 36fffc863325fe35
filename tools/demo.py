"""`cupola demo`: the nominal shoot-day scenario, watched through the ground monitor.

Runs `hil/scenarios/nominal.toml` exactly as `cupola bench run nominal` does (a private
mosquitto, the simulators, the real daemon, every expectation judged) while the monitor
shows it live; without a terminal it prints the monitor's summary instead. The monitor
holds a director's key, so its command palette (ctrl+p) can command the shoot too. Every
process started is stopped at the end, also when interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

from protocols import ground
from protocols.ground import Role
from tools.broker_link import BrokerLink
from tools.keys import create_key
from tools.monitor.app import MonitorApp
from tools.monitor.summary import summary
from tools.monitor.view import NodeView
from tools.scenario.cli import resolve
from tools.scenario.report import verdict_lines
from tools.scenario.runner import NODE, Outcome, run_scenario
from tools.scenario.spec import load_scenario

CLOSE_AFTER_S = 6.0  # the screen stays up this long after the scenario, verdicts on it
SCREENSHOT_WITHIN_S = 60.0  # the second take rolls well before this, even on a loaded bench


async def _play(
    name: str, workdir: Path, *, ui: bool, screenshot: Path | None
) -> tuple[Outcome | None, str]:
    """The scenario's outcome (None if the user quit first) and the monitor's last summary."""
    scenario = load_scenario(resolve(name))
    key = create_key(Role.DIRECTOR, "demo-director")
    view = NodeView(NODE)
    broker: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    app = MonitorApp(view, key=key, subtitle=f"demo: {scenario.scenario.description}")

    def progress(text: str) -> None:
        if ui or screenshot:
            app.notify(text, title="bench")
        else:
            print(text, flush=True)

    last_look = {"summary": ""}

    def played() -> None:
        last_look["summary"] = summary(view, time.time())

    task = asyncio.create_task(
        run_scenario(
            scenario,
            workdir,
            on_progress=progress,
            on_broker=broker.set_result,
            guest_key=key,
            on_played=played,
        )
    )
    app.url = await broker
    if not ui and not screenshot:
        return await _watch_plainly(task, view, app.url), last_look["summary"]

    async def close_when_done() -> None:
        """Screenshot (if asked), verdicts on screen, then quit: the app exits whatever fails
        here, so a demo can never hang on its own screen. Headless (a screenshot run) nobody
        reads the verdicts there: it quits at once."""
        linger_s = 0.0 if screenshot is not None else CLOSE_AFTER_S
        try:
            if screenshot is not None:
                await _screenshot_mid_take(view, app, screenshot)
            with contextlib.suppress(Exception):
                outcome = await asyncio.shield(task)
                verdict = "PASSED" if outcome.passed else "FAILED"
                app.notify("\n".join(verdict_lines(outcome)[-12:]), title=f"scenario {verdict}",
                           timeout=CLOSE_AFTER_S)  # fmt: skip
            await asyncio.sleep(linger_s)
        finally:
            app.exit()

    closer = asyncio.create_task(close_when_done())
    try:
        await app.run_async(headless=screenshot is not None, size=(160, 48) if screenshot else None)
    finally:
        closer.cancel()
    if not task.done():  # the user quit early
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return None, last_look["summary"]
    return task.result(), last_look["summary"]


async def _screenshot_mid_take(view: NodeView, app: MonitorApp, path: Path) -> None:
    """The README's screenshot: the second take rolling (or the screen as it is after a while)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(SCREENSHOT_WITHIN_S):
            await _second_take_rolling(view, app)
    saved = asyncio.Event()

    def save() -> None:  # once the screen is laid out again, never mid-redraw
        try:
            app.save_screenshot(path.name, str(path.parent))
        finally:
            saved.set()

    app.call_after_refresh(save)
    await saved.wait()


async def _second_take_rolling(view: NodeView, app: MonitorApp) -> None:
    """Until the monitor has drawn a second take rolling, its cameras' polled states saying
    so too (the README's screenshot): the take's event comes at once, a state at the next
    state tick (2 Hz)."""
    seen = False
    while not seen:
        rolling = len(view.takes) >= 2 and any(t.rolling for t in view.takes.values())
        seen = rolling and any(
            (d.get("status") or {}).get("state") == "recording" for d in view.devices.values()
        )
        app.redrawn.clear()
        await app.redrawn.wait()  # the next redraw: with the take on screen once seen


async def _watch_plainly(task: asyncio.Task[Outcome], view: NodeView, url: str) -> Outcome:
    async def receive(topic: str, payload: bytes) -> None:
        view.absorb(topic, payload, time.time())

    def status(connected: bool, detail: str) -> None:
        view.set_connection(connected, detail, time.time())

    link = BrokerLink(
        url, [ground.topic(NODE, "#")], receive, on_status=status,
        client_id="demo-watcher", persistent=True,  # as the monitor: outages lose nothing
    )  # fmt: skip
    watcher = asyncio.create_task(link.run())
    try:
        return await task
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


def run_demo(
    scenario: str = "nominal", *, keep: bool = False, ui: bool | None = None,
    screenshot: Path | None = None,
) -> int:  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix="cupola-demo-"))
    live = sys.stdout.isatty() if ui is None else ui
    print(f"Cupola demo: the {scenario!r} shoot-day scenario, watched from the ground")
    try:
        outcome, last_look = asyncio.run(_play(scenario, workdir, ui=live, screenshot=screenshot))
    except KeyboardInterrupt:
        print("\ninterrupted: everything stopped", file=sys.stderr)
        return 130
    except (RuntimeError, TimeoutError, OSError) as exc:
        print(f"\ndemo failed: {exc}\n(logs kept in {workdir})", file=sys.stderr)
        return 1
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if outcome is None:
        print("stopped before the scenario ended; everything it started is stopped")
        return 130
    print("\nThe monitor as the scenario ended\n")
    print(last_look)
    print()
    print("\n".join(verdict_lines(outcome)))
    if screenshot is not None:
        print(f"screenshot: {screenshot}")
    if keep:
        print(f"work directory: {workdir}")
    return 0 if outcome.passed else 1
