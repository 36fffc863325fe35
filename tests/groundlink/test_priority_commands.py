"""The priority command path: flight controllers' commands on a connection of their own.

In-process (the intake on a virtual clock): the priority topic takes flight controllers'
commands only, into the first lane. Through a real mosquitto, the daemon and the simulator:
a flight controller's cap cut sent as `cupola cmd` sends it is answered within a second
although a 10,000-message forged burst was published on the command topic just before it,
and a director's command on the priority topic is refused, counted, and never executed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from hil.broker import Mosquitto
from protocols import ground
from protocols.ground import Role
from tests.daemon.conftest import Shoot, shoot
from tests.groundlink.flood import flood_from_process
from tests.groundlink.intake_rig import rig_at
from tests.harness import CAMERA_AND_LIGHT_UNPACED
from tools.ground_client import sign_command

BENCH = CAMERA_AND_LIGHT_UNPACED
NODE = "test-node"
FLOOD = 10_000
ANSWER_WITHIN_S = 1.0
REFUSALS_OFTEN = {"refusal_summary_s": 0.2}


def refused(s: Shoot, since: float = 0.0) -> int:
    """Unauthenticated or misrouted messages the node says it refused (summaries, summed)."""
    return sum(int(e["data"]["count"]) for e in s.events("command.refused", since=since))


def test_a_flight_controller_is_sent_on_the_priority_topic_everyone_else_on_cmd() -> None:
    assert ground.command_topic(NODE, Role.FLIGHT_CONTROLLER) == f"cupola/v1/{NODE}/cmd/priority"
    for role in (Role.DIRECTOR, Role.CREW, Role.MONITOR):
        assert ground.command_topic(NODE, role) == f"cupola/v1/{NODE}/cmd"


async def test_a_priority_command_overtakes_the_queued_commands(tmp_path: Path) -> None:
    rig = rig_at(tmp_path)
    queued = [rig.sign("director-1", "light.set", {"level": n}) for n in range(5)]
    for command in queued:
        rig.receive(command)
    urgent = rig.sign("fc-1", "light.set", {"level": 0})
    rig.intake.receive(json.dumps(urgent).encode(), priority=True)
    await rig.drain()
    assert rig.executed[0] == ("light.set", {"level": 0})
    assert rig.executed[1:] == [("light.set", {"level": n}) for n in range(5)]
    assert rig.result(urgent["id"]) is not None and rig.intake.refusals.total == 0


async def test_only_a_flight_controller_may_use_the_priority_topic(tmp_path: Path) -> None:
    rig = rig_at(tmp_path)
    for key in ("director-1", "crew-1", "monitor-1"):
        command = rig.sign(key, "status")
        rig.intake.receive(json.dumps(command).encode(), priority=True)
        await rig.drain()
        assert rig.result(command["id"]) is None, f"{key}: answered, so it was queued"
    assert rig.executed == [] and rig.intake.refusals.total == 3


async def test_a_late_priority_command_still_lets_a_cancel_behind_it_overtake(
    tmp_path: Path,
) -> None:
    rig = rig_at(tmp_path)
    late = rig.sign("fc-1", "light.set", {"level": 7}, valid_for=60)
    rig.clock.now += 5  # it waited at the broker while the node was down
    rig.intake.receive(json.dumps(late).encode(), priority=True)
    cancel = rig.sign("fc-1", "command.cancel", {"id": late["id"]})
    rig.intake.receive(json.dumps(cancel).encode(), priority=True)
    await rig.intake.process_next(0)  # the cancel: the late command is still settling
    rig.clock.now += 2
    await rig.drain()
    assert rig.executed == []
    result = rig.result(late["id"])
    assert result is not None and result["status"] == "rejected", result


async def test_a_cap_cut_is_answered_within_a_second_behind_a_forged_flood(
    tmp_path: Path, broker: Mosquitto
) -> None:
    async with shoot(tmp_path, broker, BENCH, auth_options=REFUSALS_OFTEN) as s:
        fc = s.credentials.flight
        template = sign_command(fc, "light.set", {"device": "key", "intensity_pct": 99})
        forged = [json.dumps({**template, "id": f"forged-{n:06d}",
                              "counter": template["counter"] + n}).encode()
                  for n in range(FLOOD)]  # fmt: skip
        args = {"cap_w": 250.0, "reason": "station power-down"}
        outcome = await flood_from_process(
            tmp_path, broker.url(), NODE, forged, fc, name="power.cap.set", args=args
        )
        assert outcome["result"]["status"] == "ok", outcome
        assert outcome["answer_s"] <= ANSWER_WITHIN_S, outcome
        await s.ground.wait_for(lambda: refused(s) >= FLOOD, 60, "every forgery counted")
        assert (await s.ok("budget.status"))["power"]["cap_w"] == 250.0


async def test_a_directors_command_on_the_priority_topic_is_refused(
    tmp_path: Path, broker: Mosquitto
) -> None:
    async with shoot(tmp_path, broker, BENCH, auth_options=REFUSALS_OFTEN) as s:
        director = s.credentials.keys[Role.DIRECTOR]
        command = sign_command(director, "power.cap.set", {"cap_w": 200.0, "reason": "mine"})
        since = time.time()
        await s.ground.link.publish(
            ground.topic(NODE, ground.PRIORITY_COMMAND), json.dumps(command).encode()
        )
        await s.ground.wait_for(lambda: refused(s, since) >= 1, 10, "the refusal")
        [summary] = s.events("command.refused", since=since)
        assert any("priority topic" in reason for reason in summary["data"]["reasons"]), summary
        after = await s.ok("budget.status")  # the node went on; this one came behind it
        assert after["power"]["cap_w"] != 200.0
        assert command["id"] not in s.ground.results
