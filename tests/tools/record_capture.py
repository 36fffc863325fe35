"""Record the captures the monitor's snapshot tests replay: `python -m tests.tools.record_capture`.

Each capture is what `cupola monitor --json` prints while a library scenario runs, cut at a
moment worth looking at, with device state thinned to one message a second per device (the
screen only shows the latest, and the sparkline is fed by the PDU's). Re-record after a
change to what the node publishes, then `pytest tests/tools --snapshot-update` and look.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

from protocols import ground
from tools.broker_link import BrokerLink
from tools.monitor.jsonlines import render, status_line
from tools.scenario.cli import resolve
from tools.scenario.runner import NODE, run_scenario
from tools.scenario.spec import load_scenario

HERE = Path(__file__).parent / "captures"
# scenario -> seconds into it when the capture stops
MOMENTS = {"nominal": 14.0, "power-emergency": 9.0, "port-unplug": 5.0}


async def record(name: str, stop_at_s: float) -> list[str]:
    """The capture's lines, up to `stop_at_s` into the scenario."""
    lines: list[str] = []
    last_state: dict[str, float] = {}
    started: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    async def keep(topic: str, payload: bytes) -> None:
        line = render(topic, payload)
        parsed = ground.parse_topic(topic)
        if parsed is not None and parsed[1] == ground.STATE:
            if float(line["received"]) - last_state.get(topic, 0.0) < 1.0:  # type: ignore[arg-type]
                return
            last_state[topic] = float(line["received"])  # type: ignore[arg-type]
        if parsed is not None and parsed[1] != ground.COMMAND:
            lines.append(json.dumps(line))

    def status(connected: bool, detail: str) -> None:
        lines.append(json.dumps(status_line(connected, detail)))

    async def watch(url: str) -> None:
        link = BrokerLink(url, [ground.topic(NODE, "#")], keep, on_status=status)
        await link.run()

    watchers: list[asyncio.Task[None]] = []

    def on_broker(url: str) -> None:
        watchers.append(asyncio.get_running_loop().create_task(watch(url)))

    def on_progress(text: str) -> None:
        if "playing" in text and not started.done():
            started.set_result(time.time())

    with tempfile.TemporaryDirectory() as workdir:
        scenario = load_scenario(resolve(name))
        run = asyncio.create_task(
            run_scenario(scenario, Path(workdir), on_broker=on_broker, on_progress=on_progress)
        )
        begin = await started
        await asyncio.sleep(max(0.0, begin + stop_at_s - time.time()))
        kept = list(lines)
        for watcher in watchers:
            watcher.cancel()
        with contextlib.suppress(Exception):
            await run
    return kept


def main() -> int:
    for name in sys.argv[1:] or list(MOMENTS):
        out = HERE / f"{name}.jsonl"
        out.write_text("\n".join(asyncio.run(record(name, MOMENTS[name]))) + "\n")
        print(f"{out}: {sum(1 for _ in out.open())} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
