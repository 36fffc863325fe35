"""Captures: what `cupola monitor --json` wrote, read back into a view.

A flight controller reviewing a pass, a test pinning the screen, and the README's picture
all replay a capture: the view ends exactly as it was when the last line was written.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from protocols import ground
from tools.monitor.view import NodeView


class CaptureError(ValueError):
    """A capture line that is not what `cupola monitor --json` writes."""


class BeforeCapture(ValueError):
    """A moment before the capture's first line: nothing had arrived, there is no screen."""

    def __init__(self, until: float, begins: float) -> None:
        super().__init__(
            f"{_utc(until)} is before the capture begins ({_utc(begins)}): nothing had arrived yet"
        )


def _utc(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat(timespec="seconds")


def capture_node(path: Path) -> str | None:
    """The node whose messages the capture holds (its first), if any."""
    with path.open() as capture:
        for line in capture:
            try:
                parsed = ground.parse_topic(str(json.loads(line).get("topic", "")))
            except (ValueError, AttributeError):
                return None
            if parsed is not None:
                return parsed[0]
    return None


def _payload(entry: dict[str, Any]) -> bytes:
    """The bytes as received: a message that did not decode was kept raw (JSON or hex)."""
    if "message" in entry:
        return json.dumps(entry["message"]).encode()
    if "raw" in entry:
        return json.dumps(entry["raw"]).encode()
    return bytes.fromhex(entry["raw_hex"])


def _not_a_line(path: Path, number: int, exc: Exception) -> CaptureError:
    return CaptureError(f"{path}:{number}: not a monitor capture line ({exc})")


def load_capture(path: Path, view: NodeView, until: float | None = None) -> float:
    """Feed `view` every line (up to the time `until`); returns when the last one came.

    Raises BeforeCapture when `until` is before the first line.
    """
    last = 0.0
    with path.open() as capture:
        for number, line in enumerate(capture, start=1):
            try:
                entry = json.loads(line)
                at = float(entry["at"] if "monitor" in entry else entry["received"])
            except (ValueError, KeyError, TypeError) as exc:
                raise _not_a_line(path, number, exc) from exc
            if until is not None and at > until:
                if number == 1:
                    raise BeforeCapture(until, at)
                break
            last = at
            try:
                if "monitor" in entry:
                    view.set_connection(entry["monitor"] == "connected", entry["detail"], at)
                else:
                    view.absorb(entry["topic"], _payload(entry), at)
            except (ValueError, KeyError, TypeError) as exc:
                raise _not_a_line(path, number, exc) from exc
    return last
