"""Start the monitor: live on a broker, or replaying a capture."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from protocols.ground import KeyFileError, read_key
from tools.broker_link import forget_session
from tools.cmd import USAGE
from tools.ground_client import DEFAULT_VALID_FOR_S
from tools.monitor.app import MonitorApp
from tools.monitor.replay import BeforeCapture, CaptureError, capture_node, load_capture
from tools.monitor.summary import summary
from tools.monitor.view import NodeView


def run_live(
    url: str,
    node: str,
    *,
    ca_file: Path | None,
    key_path: Path | None,
    los_after_s: float,
    valid_for_s: float = DEFAULT_VALID_FOR_S,
) -> int:
    try:
        key = read_key(key_path) if key_path is not None else None
    except KeyFileError as exc:
        print(f"cupola monitor: {exc}", file=sys.stderr)
        return USAGE
    view = NodeView(node, los_after_s=los_after_s)
    app = MonitorApp(view, url=url, ca_file=ca_file, key=key, valid_for_s=valid_for_s)
    try:
        app.run()
    finally:
        asyncio.run(forget_session(url, app.client_id, ca_file))
    return 0


def run_replay(path: Path, node: str | None, *, at: float | None, text: bool) -> int:
    try:
        view = NodeView(node or capture_node(path) or "iss-film")
        last = load_capture(path, view, until=at)
    except (OSError, CaptureError) as exc:
        print(f"cupola monitor: {exc}", file=sys.stderr)
        return 2
    except BeforeCapture as exc:
        print(f"cupola monitor: --at {exc}", file=sys.stderr)
        return USAGE
    now = at if at is not None else last
    if text:
        print(summary(view, now))
        return 0
    MonitorApp(view, clock=lambda: now, subtitle=f"replay of {path.name}").run()
    return 0
