"""Captures: what `cupola monitor --json` wrote, read back into a view.

A flight controller reviewing a pass, a test pinning the screen, and the README's picture
all replay a capture: the view ends exactly as it was when the last line was written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from protocols import ground
from tools.monitor.view import NodeView


class CaptureError(ValueError):
    """A capture line that is not what `cupola monitor --json` writes."""


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


def load_capture(path: Path, view: NodeView, until: float | None = None) -> float:
    """Feed `view` every line (up to the time `until`); returns when the last one came."""
    last = 0.0
    with path.open() as capture:
        for number, line in enumerate(capture, start=1):
            try:
                entry = json.loads(line)
                at = float(entry["at"] if "monitor" in entry else entry["received"])
                if until is not None and at > until:
                    break
                last = at
                if "monitor" in entry:
                    view.set_connection(entry["monitor"] == "connected", entry["detail"], at)
                else:
                    view.absorb(entry["topic"], _payload(entry), at)
            except (ValueError, KeyError, TypeError) as exc:
                raise CaptureError(f"{path}:{number}: not a monitor capture line ({exc})") from exc
    return last
