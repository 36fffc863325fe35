"""Command authority: one console commands (per role where configured); hand-over by request
and accept, a flight controller's take-over with a reason; every change an event."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_host.commands.dispatcher import signature_of
from firmware_host.events import EventBus
from firmware_host.groundlink.authority import COMMANDS, CommandAuthority
from protocols.messages.common import Severity
from tests.groundlink.intake_rig import KEY_ROLES, Clock, Rig, build, make_keys
from tests.virtual_time import run_virtual


def rig(tmp_path: Path, mode: str = "node") -> Rig:
    keys, path = make_keys(tmp_path)
    return build(tmp_path, keys, path, Clock(), authority=mode)  # type: ignore[arg-type]


async def send(r: Rig, key: str, name: str, **args: Any) -> dict[str, Any]:
    r.clock.now += 0.01
    result = await r.send(r.sign(key, name, args))
    assert result is not None
    return result


def last_event(r: Rig, name: str) -> Any:
    return [e for e in r.events if e.name == name][-1]


async def test_nobody_commands_until_a_console_claims_authority(tmp_path: Path) -> None:
    r = rig(tmp_path)
    refused = await send(r, "director-1", "light.set", level=3)
    assert refused["status"] == "rejected"
    assert "no console holds command authority" in refused["reason"]
    assert (await send(r, "director-1", "status"))["status"] == "ok"  # reading is free
    assert (await send(r, "director-1", "authority.claim"))["status"] == "ok"
    assert (await send(r, "director-1", "light.set", level=3))["status"] == "ok"
    assert r.executed == [("status", {}), ("light.set", {"level": 3})]
    changed = last_event(r, "authority.changed")
    assert changed.data["holder"] == "director-1" and changed.data["previous"] is None


async def test_a_hand_over_by_request_and_accept(tmp_path: Path) -> None:
    r = rig(tmp_path)
    await send(r, "director-1", "authority.claim")
    refused = await send(r, "director-2", "light.set", level=5)
    assert refused["status"] == "rejected"
    assert "held by 'director-1' (director): read-only" in refused["reason"]
    assert (await send(r, "director-2", "authority.claim"))["status"] == "rejected"
    asked = await send(r, "director-2", "authority.request", note="my scene")
    assert asked["status"] == "ok"
    requested = last_event(r, "authority.requested")
    assert requested.data["key_id"] == "director-2" and "my scene" in requested.message
    # only the holder hands over, and only to a console that asked
    assert (await send(r, "director-2", "authority.accept", key_id="director-2"))[
        "status"
    ] == "rejected"
    assert (await send(r, "director-1", "authority.accept", key_id="crew-1"))[
        "status"
    ] == "rejected"
    assert (await send(r, "director-1", "authority.accept", key_id="director-2"))["status"] == "ok"
    assert (await send(r, "director-2", "light.set", level=5))["status"] == "ok"
    assert (await send(r, "director-1", "light.set", level=6))["status"] == "rejected"
    assert r.executed == [("light.set", {"level": 5})]
    status = (await send(r, "monitor-1", "authority.status"))["result"]
    assert status["holders"]["node"]["key_id"] == "director-2"
    assert status["holders"]["node"]["by"] == "director-1"
    assert status["holders"]["node"]["reason"] == "handed over"


async def test_a_flight_controller_takes_authority_with_a_reason(tmp_path: Path) -> None:
    r = rig(tmp_path)
    await send(r, "director-1", "authority.claim")
    crew = await send(r, "crew-1", "authority.take", reason="mine now")
    assert crew["status"] == "rejected" and "may not send 'authority.take'" in crew["reason"]
    no_reason = await send(r, "fc-1", "authority.take")
    assert no_reason["status"] == "rejected"
    taken = await send(r, "fc-1", "authority.take", reason="power emergency on bus B")
    assert taken["status"] == "ok" and taken["result"]["previous"] == "director-1"
    event = last_event(r, "authority.changed")
    assert event.severity is Severity.WARNING and "power emergency on bus B" in event.message
    assert (await send(r, "director-1", "light.set", level=1))["status"] == "rejected"
    assert (await send(r, "fc-1", "light.set", level=2))["status"] == "ok"
    assert (await send(r, "fc-1", "authority.release"))["status"] == "ok"
    assert "no console holds" in (await send(r, "fc-1", "light.set", level=3))["reason"]


async def test_confirming_a_hazardous_command_needs_authority(tmp_path: Path) -> None:
    r = rig(tmp_path)
    await send(r, "fc-1", "authority.claim")
    armed = await send(r, "fc-1", "camera.format", camera="cam-a")
    assert armed["status"] == "armed"
    other = await send(r, "fc-2", "confirm", arm_id=armed["id"])
    assert other["status"] == "rejected" and "held by 'fc-1'" in other["reason"]
    assert (await send(r, "fc-1", "confirm", arm_id=armed["id"]))["status"] == "ok"
    assert r.executed == [("camera.format", {"camera": "cam-a"})]


async def test_the_holder_survives_a_restart(tmp_path: Path) -> None:
    keys, path = make_keys(tmp_path)
    first = build(tmp_path, keys, path, Clock(), authority="node")
    await send(first, "director-1", "authority.claim")
    first.intake.close()
    again = build(tmp_path, keys, path, Clock(), authority="node")
    again.clock.now += 1
    assert (await send(again, "director-1", "light.set", level=1))["status"] == "ok"
    assert (await send(again, "director-2", "light.set", level=1))["status"] == "rejected"


async def test_one_holder_per_role_where_configured(tmp_path: Path) -> None:
    r = rig(tmp_path, "role")
    await send(r, "director-1", "authority.claim")
    assert (await send(r, "crew-1", "authority.claim"))["status"] == "ok"
    assert (await send(r, "crew-1", "light.set", level=1))["status"] == "ok"
    refused = await send(r, "director-2", "light.set", level=2)
    assert "for role director is held by 'director-1'" in refused["reason"]
    await send(r, "fc-1", "authority.take", reason="director off shift", role="director")
    assert (await send(r, "director-1", "light.set", level=3))["status"] == "rejected"
    assert (await send(r, "crew-1", "light.set", level=4))["status"] == "ok"


async def test_authority_off_keeps_every_key_commanding(tmp_path: Path) -> None:
    r = rig(tmp_path, "off")
    assert (await send(r, "director-2", "light.set", level=1))["status"] == "ok"
    unknown = await send(r, "director-1", "authority.claim")
    assert "unknown command 'authority.claim'" in unknown["reason"]


KEYS = sorted(KEY_ROLES)
# in memory where the machine has it: each example writes its state files afresh
SCRATCH = "/dev/shm" if Path("/dev/shm").is_dir() else None
ACTIONS = ["claim", "request", "accept", "release", "take", "light.set"]


@settings(max_examples=50)
@given(st.lists(st.tuples(st.sampled_from(KEYS), st.sampled_from(ACTIONS),
                          st.sampled_from(KEYS)), max_size=25))  # fmt: skip
def test_only_the_holder_ever_commands(steps: list[tuple[str, str, str]]) -> None:
    """Any sequence of hand-overs from any consoles: a command runs iff its key holds
    authority, as a plain model of the rules says."""

    async def run() -> None:
        with tempfile.TemporaryDirectory(dir=SCRATCH) as tmp:
            r = rig(Path(tmp))
            holder: str | None = None
            asked: set[str] = set()
            for key, action, target in steps:
                role = KEY_ROLES[key].value
                if role == "monitor" and action != "take":
                    continue  # refused by role before authority: another test's business
                args = {"key_id": target} if action == "accept" else {}
                if action == "take":
                    args = {"reason": "test"}
                name = action if action == "light.set" else f"authority.{action}"
                before = len(r.executed)
                result = await send(r, key, name, **({"level": 1} if action == "light.set"
                                                     else args))  # fmt: skip
                ok = result["status"] == "ok"
                if action == "light.set":
                    assert ok == (holder == key) == (len(r.executed) == before + 1)
                elif action == "claim":
                    assert ok == (holder in (None, key))
                    holder = key if ok else holder
                elif action == "request":
                    assert ok == (holder is not None and holder != key)
                    if ok:
                        asked.add(key)
                elif action == "accept":
                    assert ok == (holder == key and target in asked)
                    if ok:
                        holder = target
                        asked.discard(target)
                elif action == "release":
                    assert ok == (holder == key)
                    holder = None if ok else holder
                else:
                    assert ok == (role == "flight_controller")
                    if ok:
                        holder = key
                        asked.discard(key)
            r.intake.close()

    run_virtual(run())


def damage(db: Path) -> None:
    db.write_bytes(b"this is not a database" * 100)
    for leftover in db.parent.glob(f"{db.name}-*"):  # its WAL and shared memory
        leftover.unlink()


async def test_a_damaged_authority_file_starts_with_nobody_holding_it(tmp_path: Path) -> None:
    keys, path = make_keys(tmp_path)
    first = build(tmp_path, keys, path, Clock(), authority="node")
    await send(first, "director-1", "authority.claim")
    first.intake.close()
    damage(tmp_path / "authority.db")
    again = build(tmp_path, keys, path, Clock(), authority="node")
    again.clock.now += 1
    refused = await send(again, "director-1", "light.set", level=1)
    assert "no console holds command authority" in refused["reason"]


def test_the_authority_lists_its_own_commands_when_on_none_when_off_and_no_caller_shares_them(
    tmp_path: Path,
) -> None:
    on = CommandAuthority("role", tmp_path / "on.db", EventBus())
    off = CommandAuthority("off", tmp_path / "off.db", EventBus())
    listed = on.signatures()
    assert listed == {name: signature_of(doc, args) for name, (args, doc) in COMMANDS.items()}
    assert off.signatures() == {}
    listed.clear()
    assert set(on.signatures()) == set(COMMANDS)
    on.close()
    off.close()
