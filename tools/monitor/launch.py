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
    archive_url: str | None = None,
) -> int:
    try:
        key = read_key(key_path) if key_path is not None else None
    except KeyFileError as exc:
        raise input_refused(exc) from None
    view = NodeView(node, los_after_s=los_after_s)
    if archive_url is not None:
        from tools.archive.connect import connect  # noqa: PLC0415 - only --db needs psycopg

        connect(archive_url).close()  # unreachable or malformed: one line now, not a dead pane
    app = MonitorApp(view, url=url, ca_file=ca_file, key=key, valid_for_s=valid_for_s,
                     archive_url=archive_url)  # fmt: skip
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


def run_archive_replay(
    url: str, node: str, *, since: float | None, at: float | None, text: bool
) -> int:
    """The screen as it was at `at` (default: now), from what the archive holds since `since`."""
    import time  # noqa: PLC0415

    import psycopg  # noqa: PLC0415

    from tools.archive.connect import connect, describe  # noqa: PLC0415
    from tools.monitor.archive import messages  # noqa: PLC0415

    until = at if at is not None else time.time()
    start = since if since is not None else until - 3600
    if start >= until:
        raise UsageError("--since must be before --at")
    with connect(url) as conn:
        try:
            found = messages(conn, node, start, until)
        except psycopg.errors.UndefinedTable:
            raise DataError(f"{describe(url)} holds no archive") from None
    if not found:
        raise DataError(f"the archive holds nothing from {node} in that time range")
    view = NodeView(node)
    view.set_connection(True, "replayed from the archive", found[0].received)
    for message in found:
        view.absorb(message.topic, message.payload, message.received)
    if text:
        print(summary(view, until))
        return 0
    MonitorApp(view, clock=lambda: until, subtitle=f"archive replay of {node}").run()
    return 0
