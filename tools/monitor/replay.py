"""Captures: what `cupola monitor --json` wrote, read back into a view.

A flight controller reviewing a pass, a test pinning the screen, and the README's picture
all replay a capture: the view ends exactly as it was when the last line was written.
"""

from __future__ import annotations

import json
from pathlib import Path

from tools.monitor.view import NodeView


class CaptureError(ValueError):
    """A capture line that is not what `cupola monitor --json` writes."""


def load_capture(path: Path, view: NodeView) -> float:
    """Feed every line to `view`; returns the time the last one was received."""
    last = 0.0
    with path.open() as capture:
        for number, line in enumerate(capture, start=1):
            try:
                entry = json.loads(line)
                if "monitor" in entry:
                    last = float(entry["at"])
                    view.set_connection(entry["monitor"] == "connected", entry["detail"], last)
                elif "message" in entry:
                    last = float(entry["received"])
                    view.absorb(entry["topic"], json.dumps(entry["message"]).encode(), last)
            except (ValueError, KeyError, TypeError) as exc:
                raise CaptureError(f"{path}:{number}: not a monitor capture line ({exc})") from exc
    return last
