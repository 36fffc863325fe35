"""Command lifetime and authority against the real intake and dispatcher, on a virtual clock:
not_after, cancel, results naming their sender, the two-person rule, revocation at once."""

from __future__ import annotations

from pathlib import Path

import msgspec

from protocols.ground import Keyring
from tests.groundlink.intake_rig import Clock, Rig, build, make_keys, rig_at


async def test_a_command_past_its_not_after_never_runs_though_it_was_queued_in_time(
    tmp_path: Path,
) -> None:
    rig = rig_at(tmp_path)
    late = rig.sign("director-1", "light.set", {"level": 7}, valid_for=5)
    rig.receive(late)  # in time: queued behind whatever ran before it
    rig.clock.now += 6
    await rig.drain()
    result = rig.result(late["id"])
    assert result is not None and result["status"] == "rejected"
    assert result["reason"] == "expired 1.0 s ago (its not_after): not executed"
    assert rig.executed == []


async def test_an_armed_command_is_never_confirmed_past_its_not_after(tmp_path: Path) -> None:
    rig = rig_at(tmp_path)
    armed = await rig.send(rig.sign("fc-1", "camera.format", {"camera": "a"}, valid_for=5))
    assert armed is not None and armed["status"] == "armed"
    assert armed["result"]["window_s"] == 5  # not the 60 s arm window: its own not_after
    rig.clock.now += 6
    late = await rig.send(rig.sign("fc-2", "confirm", {"arm_id": armed["id"]}))
    assert late is not None and late["status"] == "rejected" and "nothing armed" in late["reason"]
    assert rig.executed == []


async def test_a_cancel_overtakes_the_queued_command_it_withdraws(tmp_path: Path) -> None:
    rig = rig_at(tmp_path)
    first = rig.sign("director-1", "light.set", {"level": 1})
    second = rig.sign("director-1", "light.set", {"level": 2})
    cancel = rig.sign("director-1", "command.cancel", {"id": first["id"]})
    for command in (first, second, cancel):
        rig.receive(command)
    await rig.drain()
    assert rig.result(cancel["id"])["result"]["was"] == "queued"  # type: ignore[index]
    withdrawn = rig.result(first["id"])
    assert withdrawn is not None and withdrawn["status"] == "rejected"
    assert withdrawn["reason"] == "cancelled by 'director-1' before it ran"
    # the cancel jumped the queue without making the command after it look replayed
    assert rig.result(second["id"])["status"] == "ok"  # type: ignore[index]
    assert rig.executed == [("light.set", {"level": 2})]


async def test_a_cancel_is_remembered_across_a_restart_until_the_command_expires(
    tmp_path: Path,
) -> None:
    keys, keyring = make_keys(tmp_path)
    clock = Clock()
    rig = build(tmp_path, keys, keyring, clock)
    held = rig.sign("director-1", "light.set", {"level": 9}, valid_for=30)  # at the broker
    cancel = rig.sign("director-1", "command.cancel",
                      {"id": held["id"], "not_after_ms": held["expires_at_ms"]})  # fmt: skip
    answer = await rig.send(cancel)
    assert answer is not None and answer["result"]["was"] == "not received yet"
    rig.intake.close()
    restarted = build(tmp_path, keys, keyring, clock)  # the node restarts ...
    result = await restarted.send(held)  # ... and the broker delivers what it kept
    assert result is not None and result["reason"] == "cancelled by 'director-1' before it ran"
    assert restarted.executed == []
    restarted.intake.close()
    clock.now += 31  # past its not_after: the cancellation is forgotten, the command too old
    again = build(tmp_path, keys, keyring, clock)
    assert again.intake.db.execute("SELECT COUNT(*) FROM cancelled").fetchone()[0] == 0


async def test_only_the_sender_or_a_flight_controller_may_cancel(tmp_path: Path) -> None:
    rig = rig_at(tmp_path)
    mine = rig.sign("director-1", "light.set", {"level": 1})
    rig.receive(mine)
    other = await rig.send(rig.sign("director-2", "command.cancel", {"id": mine["id"]}))
    assert other is not None and other["status"] == "rejected"
    assert "only that key or a flight controller" in other["reason"]
    armed = await rig.send(rig.sign("director-1", "light.power", {"level": 1}))
    assert armed is not None and armed["status"] == "armed"
    by_fc = await rig.send(rig.sign("fc-1", "command.cancel", {"id": armed["id"]}))
    assert by_fc is not None and by_fc["result"] == {"cancelled": armed["id"], "was": "armed"}
    confirm = await rig.send(rig.sign("director-2", "confirm", {"arm_id": armed["id"]}))
    assert confirm is not None and confirm["status"] == "rejected"
    assert "command.disarmed" in rig.event_names()
    done = await rig.send(rig.sign("director-1", "command.cancel", {"id": mine["id"]}))
    assert done is not None and done["reason"] == f"{mine['id']} was already answered: ok"
    assert rig.executed == [("light.set", {"level": 1})]


async def test_every_result_names_the_key_that_sent_the_command(tmp_path: Path) -> None:
    rig = rig_at(tmp_path)
    sent = [rig.sign(key, "status") for key in ("fc-1", "director-2", "monitor-1")]
    sent.append(rig.sign("monitor-1", "light.set", {"level": 1}))  # refused by role
    for command in sent:
        await rig.send(command)
    await rig.send(sent[0])  # a duplicate: the earlier result again
    assert [(r["key_id"], r["role"]) for r in rig.results] == [
        ("fc-1", "flight_controller"), ("director-2", "director"), ("monitor-1", "monitor"),
        ("monitor-1", "monitor"), ("fc-1", "flight_controller"),
    ]  # fmt: skip
    assert rig.results[-1]["duplicate"] is True


async def test_two_person_rule_needs_another_key_to_confirm(tmp_path: Path) -> None:
    rig = rig_at(tmp_path, two_person={"camera.format": "key"})
    armed = await rig.send(rig.sign("fc-1", "camera.format", {"camera": "a"}))
    assert armed is not None and armed["result"]["armed_by"] == "fc-1"
    assert "from another key than fc-1" in armed["reason"]
    event = next(e for e in rig.events if e.name == "command.armed")
    assert event.data["armed_by"] == "fc-1" and event.data["command"] == "camera.format"
    same = await rig.send(rig.sign("fc-1", "confirm", {"arm_id": armed["id"]}))
    assert same is not None and same["status"] == "rejected"
    assert same["reason"].startswith("two-person rule: camera.format armed by 'fc-1'")
    assert rig.executed == []
    second = await rig.send(rig.sign("fc-2", "confirm", {"arm_id": armed["id"]}))
    assert second is not None and second["status"] == "ok"
    assert second["armed_by"] == "fc-1" and second["key_id"] == "fc-2"
    assert rig.executed == [("camera.format", {"camera": "a"})]


async def test_two_person_rule_by_role_needs_another_role(tmp_path: Path) -> None:
    rig = rig_at(tmp_path, two_person={"light.power": "role"})
    armed = await rig.send(rig.sign("director-1", "light.power", {"level": 5}))
    assert armed is not None and armed["status"] == "armed"
    same_role = await rig.send(rig.sign("director-2", "confirm", {"arm_id": armed["id"]}))
    assert same_role is not None and "another role" in same_role["reason"]
    crew = await rig.send(rig.sign("crew-1", "confirm", {"arm_id": armed["id"]}))
    assert crew is not None and crew["status"] == "ok"
    assert rig.executed == [("light.power", {"level": 5})]


async def test_without_the_rule_the_arming_key_may_confirm(tmp_path: Path) -> None:
    rig = rig_at(tmp_path)
    armed = await rig.send(rig.sign("fc-1", "camera.format", {"camera": "a"}))
    assert armed is not None
    done = await rig.send(rig.sign("fc-1", "confirm", {"arm_id": armed["id"]}))
    assert done is not None and done["status"] == "ok"


async def revoke(rig: Rig, key: str, target: str) -> dict[str, object] | None:
    return await rig.send(rig.sign(key, "keys.revoke", {"key_id": target}))


async def test_revocation_takes_effect_at_once_and_survives_a_restart(tmp_path: Path) -> None:
    keys, keyring = make_keys(tmp_path)
    clock = Clock()
    rig = build(tmp_path, keys, keyring, clock)
    by_director = await revoke(rig, "director-1", "director-2")
    assert by_director is not None and by_director["reason"] == (
        "role director may not send 'keys.revoke'"
    )
    armed = await rig.send(rig.sign("director-2", "light.power", {"level": 1}))
    assert armed is not None and armed["status"] == "armed"
    queued = rig.sign("director-2", "light.set", {"level": 4})
    rig.receive(queued)  # authentic when it came in; revoked before its turn
    done = await revoke(rig, "fc-1", "director-2")
    assert done is not None and done["result"] == {"revoked": "director-2",
                                                   "disarmed": [armed["id"]]}  # fmt: skip
    assert rig.result(queued["id"])["reason"].startswith("key 'director-2' was revoked")  # type: ignore[index]
    confirm = await rig.send(rig.sign("director-1", "confirm", {"arm_id": armed["id"]}))
    assert confirm is not None and "nothing armed" in confirm["reason"]
    after = await rig.send(rig.sign("director-2", "status"))
    assert after is None  # refused unanswered, like any untrusted key
    assert rig.intake.refusals.total == 1
    rig.intake.close()
    restarted = build(tmp_path, keys, keyring, clock)
    assert await restarted.send(restarted.sign("director-2", "status")) is None
    assert rig.executed == []


async def test_sighup_rereads_the_keyring_and_disarms_removed_keys(tmp_path: Path) -> None:
    rig = rig_at(tmp_path)
    armed = await rig.send(rig.sign("crew-1", "light.power", {"level": 1}))
    assert armed is not None and armed["status"] == "armed"
    trimmed = Keyring(keys=dict(rig.keys), revoked=["crew-1"])
    rig.keyring_path.write_bytes(msgspec.json.encode(trimmed))
    rig.intake.reload_keyring()
    assert rig.intake.armed == {}
    assert "keys.reloaded" in rig.event_names()
    assert await rig.send(rig.sign("crew-1", "status")) is None
    rig.keyring_path.write_text("{not json")
    rig.intake.reload_keyring()  # a broken file: the keyring in force stays
    assert rig.event_names()[-1] == "keys.reload_failed"
    assert (await rig.send(rig.sign("director-1", "status")))["status"] == "ok"  # type: ignore[index]


async def test_an_unknown_command_is_called_unknown_whoever_sends_it(tmp_path: Path) -> None:
    rig = rig_at(tmp_path)
    for key in ("monitor-1", "director-1", "fc-1"):
        result = await rig.send(rig.sign(key, "camera.explode"))
        assert result is not None and result["reason"].startswith(
            "unknown command 'camera.explode'; known: camera.format, command.cancel, confirm"
        ), result
    forbidden = await rig.send(rig.sign("monitor-1", "light.set", {"level": 1}))
    assert forbidden is not None and forbidden["reason"] == "role monitor may not send 'light.set'"


async def test_a_cancel_right_behind_a_late_command_overtakes_it(tmp_path: Path) -> None:
    rig = rig_at(tmp_path)
    held = rig.sign("director-1", "light.set", {"level": 3}, valid_for=60)
    kept = rig.sign("director-1", "light.set", {"level": 4}, valid_for=60)
    rig.clock.now += 20  # both waited at the broker while the node was down
    rig.receive(held)
    rig.receive(kept)
    await rig.drain()
    assert rig.results == []  # late arrivals settle first: a cancel may be right behind
    rig.receive(rig.sign("director-1", "command.cancel", {"id": held["id"]}))
    await rig.drain()
    rig.clock.now += 1
    await rig.drain()
    assert rig.result(held["id"])["reason"] == "cancelled by 'director-1' before it ran"  # type: ignore[index]
    assert rig.result(kept["id"])["status"] == "ok"  # type: ignore[index]
    assert rig.executed == [("light.set", {"level": 4})]


async def test_a_result_holding_typed_values_is_kept_and_a_replay_gets_it_again(
    tmp_path: Path,
) -> None:
    """`status` answers with the devices' typed snapshots: the result is stored as sent, so a
    replay gets the same answer, and nothing fails (storing it raised for every `status`, a
    critical command.error each time; found by `make soak`)."""
    rig = rig_at(tmp_path)
    command = rig.sign("monitor-1", "status")
    first = await rig.send(command)
    again = await rig.send(command)
    assert first is not None and first["status"] == "ok"
    assert again is not None and again.pop("duplicate") is True
    assert again == msgspec.json.decode(msgspec.json.encode(first))
    assert rig.executed == [("status", {})]
    assert "command.error" not in rig.event_names()
