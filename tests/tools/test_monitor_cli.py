"""`cupola monitor --replay` (a capture read back, whole or at a moment) and `--json`."""

from __future__ import annotations

import asyncio
import datetime
import json
import signal
import subprocess
from pathlib import Path

from hil.broker import Mosquitto
from hil.processes import child_preexec
from tests.harness import cupola
from tools.broker_link import broker_client

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
    assert refused.returncode == 64 and "neither ISO 8601 nor unix seconds" in refused.stderr


async def test_json_mode_prints_one_line_per_message_and_stops_on_sigint(
    broker: Mosquitto,
) -> None:
    argv = cupola("monitor", "--broker", broker.url(), "--node", "n1", "--json")
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, preexec_fn=child_preexec
    )  # its Ctrl-C reaches it, whatever this worker ignores
    assert process.stdout is not None
    try:
        first = await asyncio.wait_for(process.stdout.readline(), 20)
        assert json.loads(first)["monitor"] == "connected"  # subscribed: safe to publish
        envelope = {"v": 1, "node": "n1", "kind": "event", "ts": 1.0, "seq": 1, "body": {}}
        async with broker_client(broker.url(), None, "node-n1") as node:
            await node.publish("cupola/v1/n1/event", json.dumps(envelope).encode(), qos=1)
            await node.publish("cupola/v1/n1/event", b"\xff\x00", qos=1)
        lines = [json.loads(await asyncio.wait_for(process.stdout.readline(), 20))
                 for _ in range(2)]  # fmt: skip
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert lines[0]["message"]["seq"] == 1 and lines[1]["raw_hex"] == "ff00"


def test_a_moment_before_the_capture_is_refused_in_one_line() -> None:
    begins = float(json.loads(NOMINAL.read_text().splitlines()[0])["at"])
    moment = datetime.datetime.fromtimestamp(begins - 60, datetime.UTC)
    refused = replay("--at", moment.isoformat(timespec="seconds"))
    assert refused.returncode == 64 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert "is before the capture begins" in refused.stderr
    assert "nothing had arrived yet" in refused.stderr
