"""Only the right people's commands run, each once, each answered with a reason."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

from hil.broker import Mosquitto
from protocols import ground
from protocols.ground import KeyFile, Role
from tests.daemon.conftest import Shoot, shoot
from tests.harness import CAMERA_AND_LIGHT_UNPACED
from tools.ground_client import sign_command
from tools.keys import revoke

BENCH = CAMERA_AND_LIGHT_UNPACED
SET = {"device": "key", "intensity_pct": 42}


async def result_of(s: Shoot, command: dict[str, Any]) -> dict[str, Any]:
    await s.ground.publish_command(command)
    await s.ground.wait_for(lambda: command["id"] in s.ground.results, 10, "a result")
    return s.ground.results[command["id"]]


def resigned(key: KeyFile, command: dict[str, Any], **changes: Any) -> dict[str, Any]:
    fields = {**command, **changes}
    fields["sig"] = ground.signature(key.secret_bytes(), fields)
    return fields


def light_executions(s: Shoot) -> int:
    return int(s.sim.control.describe("key")["executions"])


def refusals(s: Shoot) -> dict[str, int]:
    """Every reason the node's refusal summaries gave so far, with its count."""
    counted: dict[str, int] = {}
    for event in s.events("command.refused"):
        for reason, count in event["data"]["reasons"].items():
            counted[reason] = counted.get(reason, 0) + count
    return counted


SUMMARY_OFTEN = {"refusal_summary_s": 0.2}


async def test_forged_unknown_and_mismatched_keys_are_refused_unanswered(
    tmp_path: Path, broker: Mosquitto
) -> None:
    async with shoot(tmp_path, broker, BENCH, auth_options=SUMMARY_OFTEN) as s:
        fc, director = s.credentials.flight, s.credentials.keys[Role.DIRECTOR]
        before = light_executions(s)
        forged = sign_command(KeyFile(fc.key_id, fc.role, "QUJD" * 11), "light.set", SET)
        unknown = sign_command(
            KeyFile("intruder", Role.FLIGHT_CONTROLLER, fc.secret), "light.set", SET
        )
        claimed = resigned(director, sign_command(director, "light.set", SET),
                           role=Role.FLIGHT_CONTROLLER.value)  # fmt: skip
        tampered = sign_command(fc, "light.set", SET)
        tampered["args"] = {"device": "key", "intensity_pct": 100}
        for command in (forged, unknown, claimed, tampered):
            await s.ground.publish_command(command)
        await s.ground.wait_for(lambda: sum(refusals(s).values()) >= 4, 10, "the summaries")
        assert light_executions(s) == before  # nothing ran
        assert (await result_of(s, sign_command(fc, "light.set", SET)))["status"] == "ok"
        answered = [c["id"] for c in (forged, unknown, claimed, tampered)
                    if c["id"] in s.ground.results]  # fmt: skip
    assert answered == []  # refusals before authentication are counted, never answered
    assert refusals(s) == {
        "bad signature for key 'flight_controller-1'": 2,
        "unknown key id 'intruder'": 1,
        "key 'director-1' belongs to role director, not flight_controller": 1,
    }


async def test_replays_run_once_and_counters_survive_a_restart(
    tmp_path: Path, broker: Mosquitto
) -> None:
    async with shoot(tmp_path, broker, BENCH, processes=True) as s:
        fc = s.credentials.flight
        first = sign_command(fc, "light.set", SET)
        old = sign_command(fc, "light.set", {"device": "key", "intensity_pct": 7})
        newer = sign_command(fc, "light.set", {"device": "key", "intensity_pct": 43})
        assert (await result_of(s, newer))["status"] == "ok"
        await s.ground.publish_command(newer)  # the same message again, verbatim
        await s.ground.wait_for(lambda: s.ground.results[newer["id"]].get("duplicate"), 10, "dup")
        assert s.ground.results[newer["id"]]["status"] == "ok"
        replayed = await result_of(s, old)  # signed before `newer`, arrives after it
        assert replayed["status"] == "rejected" and "replayed" in replayed["reason"]
        s.daemon.stop()
        s.daemon.start()
        await s.ground.wait_for(lambda: len(s.ground.births) >= 2, 20, "the daemon back")
        after_restart = await result_of(s, first)  # older than anything accepted
        light = s.sim.control.describe("key")
    assert after_restart["status"] == "rejected" and "replayed" in after_restart["reason"]
    assert light["max_executions"] == 1 and light["model"]["target_permille"] == 430


async def test_expired_early_and_overlong_commands_are_refused(
    tmp_path: Path, broker: Mosquitto
) -> None:
    async with shoot(tmp_path, broker, BENCH) as s:
        fc = s.credentials.flight
        now = time.time()
        expired = sign_command(fc, "status", {}, now=now - 120, lifetime_s=60)
        early = sign_command(fc, "status", {}, now=now + 300)
        overlong = sign_command(fc, "status", {}, lifetime_s=7200)
        results = [await result_of(s, c) for c in (expired, early, overlong)]
    assert [r["status"] for r in results] == ["rejected"] * 3
    assert results[0]["reason"].startswith("expired 6")
    assert "in the future" in results[1]["reason"]
    assert "longer than 3600 s" in results[2]["reason"]


async def test_roles_may_send_only_what_they_are_allowed(tmp_path: Path, broker: Mosquitto) -> None:
    async with shoot(tmp_path, broker, BENCH) as s:
        monitor = s.credentials.keys[Role.MONITOR]
        crew = s.credentials.keys[Role.CREW]
        refused = await result_of(s, sign_command(monitor, "record", {"scene": "1", "take": 1}))
        allowed = await result_of(s, sign_command(monitor, "status", {}))
        crew_format = await result_of(s, sign_command(crew, "camera.format", {"camera": "cam-a"}))
    assert refused["status"] == "rejected"
    assert refused["reason"] == "role monitor may not send 'record'"
    assert allowed["status"] == "ok"
    assert crew_format["reason"] == "role crew may not send 'camera.format'"


BAD_FIELDS = (
    b'{"v": 1, "id": "x", "name": "status", "args": {}, "role": "director", "key_id": "k",'
    b' "counter": 1, "issued_at_ms": 1, "expires_at_ms": 2, "sig": "00"}'
)


MALFORMED = {  # what arrives: the reason its refusal is counted under
    b"not json": "malformed command: not JSON",
    b"[1, 2]": "malformed command: not a JSON object",
    b'{"id": "abcdefgh", "name": "status"}': "malformed command: key_id missing",
    BAD_FIELDS: "unknown key id 'k'",
    b"[" * 200_000 + b"]" * 200_000: "malformed command: 400000 bytes",
    b"[" * 30_000 + b"]" * 30_000: "malformed command: nested deeper",
}


async def test_malformed_commands_are_refused_and_the_daemon_carries_on(
    tmp_path: Path, broker: Mosquitto
) -> None:
    async with shoot(tmp_path, broker, BENCH, auth_options=SUMMARY_OFTEN) as s:
        for payload in MALFORMED:
            for _ in range(8):  # eight nesting bombs held every command ~50 s before
                await s.ground.publish_raw(payload)
        sent = 8 * len(MALFORMED)
        await s.ground.wait_for(lambda: sum(refusals(s).values()) >= sent, 10, "the summaries")
        counted = refusals(s)
        for reason in MALFORMED.values():
            assert sum(n for r, n in counted.items() if r.startswith(reason)) == 8, counted
        started = time.monotonic()
        status = await result_of(s, sign_command(s.credentials.flight, "status", {}))
        assert status["status"] == "ok" and time.monotonic() - started < 2
        assert s.daemon.alive
        assert s.events("task.restarted") == [], "a task crashed"


async def test_hazardous_commands_need_arm_then_confirm(tmp_path: Path, broker: Mosquitto) -> None:
    async with shoot(tmp_path, broker, BENCH, auth_options={"arm_window_s": 1.5}) as s:
        fc = s.credentials.flight
        await s.roll({"scene": "1", "take": 1})  # rolled: a cut now logs the take
        await s.ok("cut")
        clips = lambda: s.sim.control.describe("cam-a")["model"]["clips"]  # noqa: E731
        armed = await result_of(s, sign_command(fc, "camera.format", {"camera": "cam-a"}))
        assert armed["status"] == "armed" and len(clips()) == 1
        arm_id = armed["result"]["arm_id"]
        wrong = await result_of(s, sign_command(fc, "confirm", {"arm_id": "nothing-here"}))
        confirmed = await result_of(s, sign_command(fc, "confirm", {"arm_id": arm_id}))
        again = await result_of(s, sign_command(fc, "confirm", {"arm_id": arm_id}))
        assert clips() == []
        rearmed = await result_of(s, sign_command(fc, "camera.format", {"camera": "cam-a"}))
        await asyncio.sleep(2.0)  # past the 1.5 s window
        late = await result_of(
            s, sign_command(fc, "confirm", {"arm_id": rearmed["result"]["arm_id"]})
        )
    assert wrong["status"] == "rejected" and "nothing armed" in wrong["reason"]
    assert confirmed["status"] == "ok" and confirmed["executed"] == "camera.format"
    assert again["status"] == "rejected" and "nothing armed" in again["reason"]
    assert rearmed["status"] == "armed"
    assert late["status"] == "rejected" and "expired" in late["reason"]


async def test_sighup_rereads_the_keyring_and_keys_revoke_acts_at_once(
    tmp_path: Path, broker: Mosquitto
) -> None:
    async with shoot(tmp_path, broker, BENCH, auth_options=SUMMARY_OFTEN, processes=True) as s:
        crew, director = s.credentials.keys[Role.CREW], s.credentials.keys[Role.DIRECTOR]
        assert (await result_of(s, sign_command(crew, "status", {})))["status"] == "ok"
        revoke(s.credentials.keyring, crew.key_id)
        assert s.daemon.process is not None
        os.kill(s.daemon.process.pid, signal.SIGHUP)
        await s.wait_event("keys.reloaded")
        revoked = await result_of(s, sign_command(s.credentials.flight, "keys.revoke",
                                                  {"key_id": director.key_id}))  # fmt: skip
        assert revoked["status"] == "ok", revoked
        for key in (crew, director):
            await s.ground.publish_command(sign_command(key, "status", {}))
        await s.ground.wait_for(lambda: sum(refusals(s).values()) >= 2, 10, "the summaries")
        assert s.daemon.alive
    assert refusals(s) == {"revoked key id 'crew-1'": 1, "revoked key id 'director-1'": 1}
