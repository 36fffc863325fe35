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


async def watch(url: str, node: str, ca_file: Path | None, client_id: str) -> None:
    async def write(topic: str, payload: bytes) -> None:
        sys.stdout.write(json.dumps(render(topic, payload)) + "\n")
        sys.stdout.flush()

    def status(connected: bool, detail: str) -> None:
        sys.stdout.write(json.dumps(status_line(connected, detail)) + "\n")
        sys.stdout.flush()

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
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        client_id = f"cupola-json-{uuid.uuid4().hex[:12]}"
        task = asyncio.create_task(watch(url, node, ca_file, client_id))
        await stop.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await forget_session(url, client_id, ca_file)

    asyncio.run(main())
    return 0
