"""`cupola monitor --replay`: a capture read back, whole or as the screen was at a moment."""

from __future__ import annotations

import datetime
import json
import subprocess
from pathlib import Path

from tests.harness import cupola

NOMINAL = Path(__file__).parent / "captures" / "nominal.jsonl"


def _first_take_started() -> float:
    for line in NOMINAL.read_text().splitlines():
        entry = json.loads(line)
        if entry.get("message", {}).get("body", {}).get("name") == "take.started":
            return float(entry["received"])
    raise AssertionError("the nominal capture has no take")


def replay(*words: str) -> subprocess.CompletedProcess[str]:
    argv = cupola("monitor", "--replay", str(NOMINAL), "--text", *words)
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def test_a_replay_shows_the_screen_as_it_was_at_a_moment() -> None:
    whole = replay()
    assert whole.returncode == 0, whole.stderr
    assert whole.stdout.startswith("bench-node ONLINE")  # the node named by the capture
    assert "shot log: 2 takes today" in whole.stdout
    moment = datetime.datetime.fromtimestamp(_first_take_started() + 1, datetime.UTC)
    then = replay("--at", moment.isoformat(timespec="seconds").removesuffix("+00:00"))
    assert then.returncode == 0, then.stderr
    assert "shot log: 1 take today" in then.stdout and "12A/1 REC" in then.stdout


def test_a_moment_that_is_not_a_time_is_refused() -> None:
    refused = replay("--at", "yesterday")
    assert refused.returncode == 2 and "neither ISO 8601 nor unix seconds" in refused.stderr
