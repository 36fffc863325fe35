"""Start the monitor: live on a broker, or replaying a capture."""

from __future__ import annotations

import asyncio
from pathlib import Path

from protocols.ground import KeyFileError, read_key
from tools.broker_link import forget_session
from tools.exits import DataError, NoInputError, UsageError, input_refused, reason
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
        raise input_refused(exc) from None
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
    except OSError as exc:
        raise NoInputError(f"{path}: cannot read: {reason(exc)}") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a monitor capture: byte {exc.start} is not text") from None
    except CaptureError as exc:
        raise DataError(str(exc)) from None
    except BeforeCapture as exc:
        raise UsageError(f"--at {exc}") from None
    now = at if at is not None else last
    if text:
        print(summary(view, now))
        return 0
    MonitorApp(
        view, clock=lambda: now, subtitle=f"replay of {path.name}", redraw_every_s=None
    ).run()
    return 0
