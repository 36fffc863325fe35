"""`cupola cmd` and the palette read arguments as the node's commands take them."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_host.commands.dispatcher import signature_of
from firmware_host.workflow.takes import RecordArgs
from hil.broker import Mosquitto
from protocols.ground import CommandSignature
from tests.harness import (
    DaemonProcess,
    camera_and_light_bench,
    cupola,
)
from tools.cmd import ArgumentError, parse_args, unanswered, usage
from tools.cmd_text import render_result
from tools.ground_client import GroundSession

RECORD = signature_of("Roll.", RecordArgs)
WORDS = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


@given(WORDS)
def test_a_text_argument_is_the_text_typed(text: str) -> None:
    args = parse_args([f"scene={text}", "take=3"], RECORD)
    assert isinstance(args["scene"], str) and args["take"] == 3
    try:
        literal = json.loads(text)
    except ValueError:
        literal = None
    assert args["scene"] == (literal if isinstance(literal, str) else text)


@given(WORDS)
def test_without_a_signature_values_are_json_when_they_parse(text: str) -> None:
    value = parse_args([f"x={text}"])["x"]
    try:
        assert value == json.loads(text)
    except ValueError:
        assert value == text


@given(st.integers(min_value=-(10**6), max_value=10**6), st.floats(allow_nan=False))
def test_numbers_and_nulls_pass_where_the_command_takes_them(take: int, planned: float) -> None:
    args = parse_args(
        ["scene=7", f"take={take}", f"planned_s={json.dumps(planned)}", "group=null"], RECORD
    )
    assert args == {"scene": "7", "take": take, "planned_s": planned, "group": None}


def test_unknown_and_missing_arguments_are_refused_with_the_usage() -> None:
    with pytest.raises(ArgumentError, match=r"no argument scen; missing scene \(takes scene="):
        parse_args(["scen=1", "take=1"], RECORD)
    with pytest.raises(ArgumentError, match="missing scene, take"):
        parse_args([], RECORD)
    with pytest.raises(ArgumentError, match="not key=value"):
        parse_args(["take"], RECORD)
    assert usage(RECORD).startswith("scene=string take=integer [roll=string]")
    assert usage(CommandSignature("", {})) == "(no arguments)"


def test_every_signature_survives_the_birth_certificate() -> None:
    decoded = msgspec.json.decode(msgspec.json.encode(RECORD), type=CommandSignature)
    assert decoded == RECORD


async def test_cupola_cmd_records_scene_7_and_refuses_a_missing_scene(
    tmp_path: Path, broker: Mosquitto
) -> None:
    _, credentials, config = camera_and_light_bench(tmp_path, broker.url())
    key_path = tmp_path / "fc.key"
    key_path.write_bytes(msgspec.json.encode(credentials.flight))
    DaemonProcess(tmp_path, config).start()
    async with GroundSession(broker.url(), "test-node") as gs:
        await gs.wait_for(lambda: gs.online("cam-a"), 20, "cam-a online")
        await _cmd_flow(broker, key_path, gs)


async def _cmd_flow(broker: Mosquitto, key_path: Path, gs: GroundSession) -> None:
    async def cmd(*words: str) -> subprocess.CompletedProcess[str]:
        argv = cupola("cmd", "--broker", broker.url(), "--node", "test-node",
                      "--key", str(key_path), *words)  # fmt: skip
        return await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True)

    refused = await cmd("record", "take=1")
    assert refused.returncode == 64 and "missing scene" in refused.stderr, refused
    rolled = await cmd("record", "scene=7", "take=1")
    assert rolled.returncode == 0, rolled
    # a cut inside the record lead cancels the take (nothing logged): cut once it rolled
    await gs.wait_for(lambda: "take.started" in gs.event_names(), 10, "the take rolling")
    await cmd("cut")
    takes = await cmd("--json", "shotlog.query")
    assert [t["scene"] for t in json.loads(takes.stdout)["result"]["takes"]] == ["7"]
    human = await cmd("shotlog.query")
    assert human.stdout.startswith("ok: shotlog.query\n  1 take, newest first\n"), human.stdout
    assert re.search(r"scene 7 take 1 .* \d\d:\d\d:\d\d:\d\d @ 25 fps  cut", human.stdout)
    assert re.search(r"cam-a  clip \d+  (\d\d:){3}\d\d - (\d\d:){3}\d\d", human.stdout)

    async def commands(node: str) -> subprocess.CompletedProcess[str]:
        argv = cupola("commands", "--broker", broker.url(), "--node", node)
        return await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True)

    listing = await commands("test-node")  # no key: read from the retained birth
    assert listing.returncode == 0, listing
    assert "record  scene=string take=integer [roll=string]" in listing.stdout
    assert "Roles: flight_controller, director, crew." in listing.stdout
    assert "Erase a camera's media. Hazardous: armed first" in listing.stdout
    nobody = await commands("no-such-node")
    assert nobody.returncode == 3 and "no birth certificate" in nobody.stderr


def test_a_result_reads_as_text_with_timecodes_at_the_takes_rate() -> None:
    at_25 = ((1 * 60 + 2) * 60 + 3) * 25 + 4  # 01:02:03:04
    body = {
        "id": "c1", "name": "shotlog.query", "status": "ok", "reason": "",
        "result": {"takes": [{
            "take_id": 9, "scene": "12A", "take": 3, "roll": "A001", "start_frame": at_25,
            "frame_rate": 25.0, "status": "cut", "circled": True, "notes": "best",
            "clips": [{"camera": "cam-a", "clip_id": 4, "timecode_in": at_25,
                       "timecode_out": at_25 + 250, "frames": 250, "state": "closed"}],
        }]},
    }  # fmt: skip
    assert render_result(body).splitlines() == [
        "ok: shotlog.query",
        "  1 take, newest first",
        "  #9  scene 12A take 3  roll A001  01:02:03:04 @ 25 fps  cut, circled",
        "      note: best",
        "      cam-a  clip 4  01:02:03:04 - 01:02:13:04  250 frames  closed",
    ]
    refused = {"id": "c2", "name": "record", "status": "rejected", "reason": "no such group",
               "result": {}}  # fmt: skip
    assert render_result(refused) == "rejected: record: no such group"
    nested = {"name": "budget.status", "status": "ok", "reason": "",
              "result": {"power": {"cap_w": 300, "shedding": False}, "days": [1, 2]}}  # fmt: skip
    assert render_result(nested).splitlines() == [
        "ok: budget.status", "  power:", "    cap_w: 300", "    shedding: no", "  days:",
        "    - 1", "    - 2",
    ]  # fmt: skip


def test_an_unanswered_command_says_whether_it_may_still_run() -> None:
    command = {"name": "record", "id": "abc12345", "expires_at_ms": 1_800_000_010_000}
    pending = unanswered(command, "offline (death certificate: connection lost)", 5, 1.8e9 + 4)
    assert pending == (
        "record abc12345: no result after 5 s; the node is offline (death certificate: "
        "connection lost). It may still run until 08:00:10 UTC (its not_after, 6 s from now); "
        "to withdraw it: cupola cmd --cancel abc12345"
    )
    over = unanswered(command, "online (born 07:59:00 UTC)", 15, 1.8e9 + 10)
    assert "It will not start any more: its not_after (08:00:10 UTC) has passed" in over
