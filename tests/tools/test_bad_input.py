"""Every subcommand answers bad input with one line on stderr and its exit status, never a
traceback (the statuses are defined once, in tools/exits.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_host.config import ConfigError
from hil.broker import Mosquitto
from protocols.spec_tables import vectors
from tests.harness import cupola
from tools.broker_link import BrokerLink, broker_client
from tools.cli import _broker_url
from tools.decode import Tally, decode_stream
from tools.exits import (
    EX_CANTCREAT,
    EX_CONFIG,
    EX_DATAERR,
    EX_NOINPUT,
    EX_PIPE,
    EX_UNAVAILABLE,
    EX_USAGE,
)

# One worker runs the whole table (its command lines share one forking interpreter).
pytestmark = pytest.mark.xdist_group("bad-input")

PLAN = Path(__file__).parents[2] / "tools" / "plans" / "twelve-days.toml"
CAPTURE = Path(__file__).parent / "captures" / "nominal.jsonl"
WIRES = b"".join(v.wire for v in vectors())
NO_SCHEME = "127.0.0.1:18893"

# (words, with "{d}" for a work folder holding random.bin, notes.txt and a folder DIR),
# the exit status, and what the one line on stderr must say.
TABLE = [
    (["decode", "{d}/nosuch.bin"], EX_NOINPUT, "No such file or directory"),
    (["decode", "{d}/DIR"], EX_NOINPUT, "Is a directory"),
    (["decode", "--hex", "{d}/random.bin"], EX_DATAERR, "not a hex dump"),
    (["decode", "--hex", "{d}/notes.txt"], EX_DATAERR, "0 frames"),
    (["decode", "--port", "/nonexistent"], EX_NOINPUT, "cannot open port /nonexistent"),
    (["decode", "--baud", "fast", "--port", "/dev/null"], EX_USAGE, "not a baud rate"),
    (["decode", "{d}/random.bin"], EX_DATAERR, "300 bytes"),
    (["plan", "{d}/nosuch.toml"], EX_NOINPUT, "No such file or directory"),
    (["plan", "{d}/random.bin"], EX_DATAERR, "random.bin"),
    (["plan", str(PLAN), "--plot", "/nonexistent/x.png"], EX_CANTCREAT, "does not exist"),
    (["plan", str(PLAN), "--plot", "{d}/x.txt"], EX_USAGE, "cannot draw a .txt file"),
    (["plan", str(PLAN), "--plot", "{d}/DIR"], EX_USAGE, "cannot draw"),
    (["daemon", "--check", "{d}/nosuch.toml"], EX_NOINPUT, "No such file or directory"),
    (["daemon", "--check", "{d}/random.bin"], EX_CONFIG, "random.bin"),
    (["daemon", "--config", "{d}/DIR"], EX_NOINPUT, "Is a directory"),
    (["daemon"], EX_USAGE, "--config"),
    (["commands", "--broker", NO_SCHEME], EX_USAGE, f"write mqtt://{NO_SCHEME}"),
    (["cmd", "--broker", NO_SCHEME, "--key", "k", "record"], EX_USAGE, "has no scheme"),
    (["monitor", "--json", "--broker", NO_SCHEME], EX_USAGE, "has no scheme"),
    (["monitor", "--broker", NO_SCHEME], EX_USAGE, "has no scheme"),
    (["monitor", "--broker", "http://x"], EX_USAGE, "must start with mqtt://"),
    (["monitor", "--broker", "mqtt://h:99999"], EX_USAGE, "out of range"),
    (["monitor"], EX_USAGE, "--broker"),
    (["cmd", "--broker", "mqtt://h", "--key", "k", "--timeout", "nan", "x"], EX_USAGE, "finite"),
    (["monitor", "--broker", "mqtt://h", "--los-after", "-1"], EX_USAGE, "above 0"),
    (["bench", "run", "nominal", "--speed", "inf"], EX_USAGE, "finite number above 0"),
    (
        ["monitor", "--json", "--broker", "mqtts://h", "--ca", "{d}/random.bin"],
        EX_USAGE,
        "not a PEM CA certificate",
    ),
    (
        ["commands", "--broker", "mqtts://h", "--ca", "{d}/nosuch.pem"],
        EX_USAGE,
        "nosuch.pem: No such file",
    ),
    (["monitor", "--replay", "{d}/nosuch"], EX_NOINPUT, "No such file or directory"),
    (["monitor", "--replay", "{d}/random.bin", "--text"], EX_DATAERR, "not a monitor capture"),
    (["monitor", "--replay", "{d}/notes.txt", "--text"], EX_DATAERR, "not a monitor capture"),
    (["monitor", "--replay", "{d}/DIR", "--text"], EX_NOINPUT, "Is a directory"),
    (["monitor", "--replay", str(CAPTURE), "--at", "noon-ish"], EX_USAGE, "ISO 8601"),
    (["cmd", "--broker", "mqtt://127.0.0.1:1", "--key", "{d}/nosuch", "x"], EX_NOINPUT, "key"),
    (
        ["cmd", "--broker", "mqtt://127.0.0.1:1", "--key", "{d}/random.bin", "x"],
        EX_DATAERR,
        "key file",
    ),
    (["keys", "list", "--keyring", "{d}/nosuch"], EX_NOINPUT, "keyring"),
    (["keys", "list", "--keyring", "{d}/random.bin"], EX_DATAERR, "keyring"),
    (["keys", "list"], EX_USAGE, "--keyring"),
    (
        ["keys", "create", "--role", "crew", "--id", "a", "--out", "/nonexistent/k"],
        EX_CANTCREAT,
        "does not exist",
    ),
    (["keys", "create", "--role", "crew", "--id", "a", "--out", "{d}/DIR"], EX_CANTCREAT, "exists"),
    (["keys", "create", "--role", "pilot", "--id", "a", "--out", "x"], EX_USAGE, "invalid choice"),
    (["sim", "--config", "{d}/nosuch.toml"], EX_NOINPUT, "No such file or directory"),
    (["sim", "--config", "{d}/random.bin"], EX_DATAERR, "random.bin"),
    (["simctl", "--control", "{d}/nosuch", "list"], EX_UNAVAILABLE, "cannot reach the bench"),
    (["simctl", "--control", "{d}/nosuch", "speed", "fast"], EX_USAGE, "not a number"),
    (["simctl", "--control", "{d}/nosuch", "fault"], EX_USAGE, "needs a device"),
    (["bench", "run", "{d}/nosuch.toml"], EX_NOINPUT, "No such file or directory"),
    (["bench", "run", "{d}/random.bin"], EX_DATAERR, "random.bin"),
    (["bench", "run"], EX_USAGE, "name a scenario"),
    (["demo", "--scenario", "{d}/nosuch.toml", "--no-ui"], EX_NOINPUT, "No such file"),
    (["frobnicate"], EX_USAGE, "invalid choice"),
]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bad-input")
    noise = random.Random(22).randbytes(298)
    (folder / "random.bin").write_bytes(b"\xe8\xff" + noise)  # not text, not frames
    (folder / "notes.txt").write_text("shoot notes, not a hex dump\n")
    (folder / "DIR").mkdir()
    return folder


def _ids(case: tuple[list[str], int, str]) -> str:
    return " ".join(case[0])[:60]


@pytest.fixture(scope="module")
def answers(work: Path) -> list[dict[str, Any]]:
    """Every command line of TABLE run as its own process (forked from one interpreter that
    imported the CLI once: tests/tools/cli_runner.py), in the work folder."""
    cases = [([w.replace("{d}", str(work)) for w in words], str(work)) for words, _, _ in TABLE]
    runner = subprocess.run(
        [sys.executable, "-m", "tests.tools.cli_runner"], input=json.dumps(cases),
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    results: list[dict[str, Any]] = json.loads(runner.stdout)
    return results


@pytest.mark.parametrize("index", range(len(TABLE)), ids=[_ids(c) for c in TABLE])
def test_bad_input_gets_one_line_and_its_exit_status(
    index: int, answers: list[dict[str, Any]]
) -> None:
    words, status, says = TABLE[index]
    answer = answers[index]
    stderr = answer["stderr"]
    assert "Traceback" not in stderr + answer["stdout"], stderr
    complaint = [line for line in stderr.splitlines() if line.startswith("cupola")]
    assert len(complaint) == 1 or words[0] == "decode", stderr
    assert says in stderr, stderr
    assert answer["status"] == status, stderr


def _closed_early(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """`argv | head -1`: the reader takes one line and goes."""
    shell = f"{subprocess.list2cmdline(argv)} | head -1; echo rc=${{PIPESTATUS[0]}} >&2"
    return subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=60)


def test_a_reader_that_leaves_early_costs_no_traceback(tmp_path: Path) -> None:
    capture = tmp_path / "long.bin"
    capture.write_bytes(WIRES * 300)
    for argv, statuses in (
        (cupola("decode", str(capture)), {EX_PIPE}),  # far more than a pipe holds
        (cupola("decode", "--json", str(capture)), {EX_PIPE}),
        (cupola("monitor", "--replay", str(CAPTURE), "--text"), {0, EX_PIPE}),  # may fit
    ):
        result = _closed_early(argv)
        assert result.stdout.count("\n") == 1
        assert "Traceback" not in result.stderr and "Exception" not in result.stderr
        assert result.stderr.splitlines()[-1] in {f"rc={s}" for s in statuses}, result.stderr


async def test_monitor_json_stops_quietly_when_its_reader_leaves(broker: Mosquitto) -> None:
    argv = cupola("monitor", "--broker", broker.url(), "--node", "n1", "--json")
    shell = f"{subprocess.list2cmdline(argv)} | head -1; echo rc=${{PIPESTATUS[0]}} >&2"
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", shell, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    first = await asyncio.wait_for(process.stdout.readline(), 20)
    assert json.loads(first)["monitor"] == "connected"  # head has its line and has gone
    async with broker_client(broker.url(), None, "node-n1") as node:
        for _ in range(3):  # the first write after head left meets the closed pipe
            await node.publish("cupola/v1/n1/event", b"{}", qos=1)
    await asyncio.wait_for(process.wait(), 20)
    errors = (await process.stderr.read()).decode()
    assert "Traceback" not in errors and "failed" not in errors, errors
    assert f"rc={EX_PIPE}" in errors


def test_a_broker_link_refuses_a_scheme_less_url_at_once() -> None:
    async def noop(topic: str, payload: bytes) -> None:
        pass

    with pytest.raises(ConfigError, match="has no scheme"):
        BrokerLink(NO_SCHEME, ["#"], noop)


@given(st.binary(max_size=600))
def test_decode_accounts_for_every_byte(blob: bytes) -> None:
    tally = Tally()
    for entry in decode_stream([tally.count_input(blob)]):
        tally.count(entry)
    framed = tally.bytes_in - tally.dropped_bytes - tally.delimiters
    assert framed >= 0 and (tally.frames > 0 or framed == 0)
    assert tally.status() in (0, 1, EX_DATAERR)


def test_random_bytes_are_all_accounted_for_and_fail(work: Path) -> None:
    result = subprocess.run(
        cupola("decode", str(work / "random.bin")), capture_output=True, text=True, timeout=60
    )
    summary = result.stderr.splitlines()[-1]
    assert summary.startswith("300 bytes: 0 in 0 frames")
    dropped = sum(int(line.split()[-2]) for line in result.stdout.splitlines() if "DROP" in line)
    delimiters = (work / "random.bin").read_bytes().count(0)
    assert dropped + delimiters == 300 and f"{dropped} dropped" in summary
    assert result.returncode == EX_DATAERR


def test_good_frames_then_garbage_exit_1_and_clean_frames_exit_0(tmp_path: Path) -> None:
    clean, damaged = tmp_path / "clean.bin", tmp_path / "damaged.bin"
    clean.write_bytes(WIRES)
    damaged.write_bytes(WIRES + b"\x13\x37 trailing half a frame")
    ok = subprocess.run(cupola("decode", str(clean)), capture_output=True, text=True)
    bad = subprocess.run(cupola("decode", str(damaged)), capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert bad.returncode == 1 and "INCOMPLETE" in bad.stdout, bad.stdout


@given(st.text(max_size=40))
def test_any_broker_url_is_accepted_or_refused_in_one_line(text: str) -> None:
    try:
        _broker_url(text)
    except argparse.ArgumentTypeError as exc:  # nothing else may leave
        assert "\n" not in str(exc)
