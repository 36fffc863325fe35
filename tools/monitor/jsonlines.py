"""`cupola monitor --json`: one JSON line per message, for scripts; reconnects on its own."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
import uuid
from pathlib import Path

import msgspec

from protocols import ground
from tools.broker_link import BrokerLink, forget_session


def render(topic: str, payload: bytes) -> dict[str, object]:
    line: dict[str, object] = {"topic": topic, "received": round(time.time(), 6)}
    try:
        line["message"] = msgspec.to_builtins(ground.decode(payload))
    except (msgspec.DecodeError, msgspec.ValidationError):
        try:
            line["raw"] = json.loads(payload)
        except (ValueError, RecursionError):  # not JSON, or nested too deeply to read
            line["raw_hex"] = payload.hex()
    return line


async def watch(
    url: str, node: str, ca_file: Path | None, client_id: str, reader_gone: asyncio.Event
) -> None:
    """Write every message as a line until cancelled, or until stdout's reader goes away."""

    def line(entry: dict[str, object]) -> None:
        try:
            sys.stdout.write(json.dumps(entry) + "\n")
            sys.stdout.flush()
        except BrokenPipeError:
            reader_gone.set()

    async def write(topic: str, payload: bytes) -> None:
        line(render(topic, payload))

    def status(connected: bool, detail: str) -> None:
        line(status_line(connected, detail))

    link = BrokerLink(
        url, [f"{ground.ROOT}/{node}/#"], write, ca_file=ca_file, on_status=status,
        client_id=client_id, persistent=True, max_backoff_s=5.0,  # as the monitor's screen
    )  # fmt: skip
    await link.run()


def status_line(connected: bool, detail: str) -> dict[str, object]:
    """How a capture records the monitor's own connection (replay reads it back)."""
    state = "connected" if connected else "disconnected"
    return {"monitor": state, "detail": detail, "at": time.time()}


def run_json_monitor(url: str, node: str, ca_file: Path | None = None) -> int:
    """Runs until SIGINT or SIGTERM; raises BrokenPipeError when stdout's reader has gone."""

    async def main() -> bool:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        client_id = f"cupola-json-{uuid.uuid4().hex[:12]}"
        reader_gone = asyncio.Event()
        task = asyncio.create_task(watch(url, node, ca_file, client_id, reader_gone))
        waits = [asyncio.create_task(stop.wait()), asyncio.create_task(reader_gone.wait())]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for pending in (task, *waits):
            pending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await forget_session(url, client_id, ca_file)
        return reader_gone.is_set()

    if asyncio.run(main()):
        raise BrokenPipeError("stdout closed")
    return 0
