"""The ground session drops what no node sends, and keeps listening."""

from __future__ import annotations

import json

from hil.broker import Mosquitto
from protocols.ground import Role
from tools.broker_link import broker_client
from tools.ground_client import GroundSession, sign_command
from tools.keys import create_key


def envelope(kind: str, body: object, **fields: object) -> bytes:
    return json.dumps(
        {"v": 1, "node": "n1", "kind": kind, "ts": 1.0, "body": body, **fields}
    ).encode()


async def test_a_body_that_breaks_the_schema_is_counted_and_the_session_goes_on(
    broker: Mosquitto,
) -> None:
    async with GroundSession(broker.url(), "n1") as gs, broker_client(broker.url(), None) as node:
        await node.publish(
            "cupola/v1/n1/birth", envelope("birth", {"devices": []}, bd_seq=1), qos=1
        )
        await node.publish("cupola/v1/n1/state/cam-a", b"not json", qos=1)
        good = {"name": "x", "severity": "info", "message": "", "source": "d", "data": {},
                "ts": 1.0}  # fmt: skip
        await node.publish("cupola/v1/n1/event", envelope("event", good, seq=1), qos=1)
        await gs.wait_for(lambda: gs.event_names() == ["x"], 10, "the good event")
        assert gs.malformed == 2 and not gs.births and not gs.states


async def test_a_node_numbering_again_after_losing_its_state_is_followed(
    broker: Mosquitto,
) -> None:
    def event(seq: int) -> bytes:
        body = {"name": f"e{seq}", "severity": "info", "message": "", "source": "d",
                "data": {}, "ts": 1.0}  # fmt: skip
        return envelope("event", body, seq=seq)

    def birth(stream: int) -> bytes:
        body = {"node": "n1", "schema": 1, "started": 1.0, "session_started": 1.0,
                "frame_rate": 25.0, "devices": {}, "groups": {}, "commands": {},
                "limits": [], "sequence": {}, "backlog": {}, "budget": {}}  # fmt: skip
        return envelope("birth", body, bd_seq=1, stream=stream)

    async with GroundSession(broker.url(), "n1") as gs, broker_client(broker.url(), None) as node:
        for leaf, payload in (("birth", birth(1)), ("event", event(50)),
                              ("birth", birth(2)), ("event", event(1))):  # fmt: skip
            await node.publish(f"cupola/v1/n1/{leaf}", payload, qos=1)
        await gs.wait_for(lambda: len(gs.events) == 2, 10, "both events")
        assert gs.event_names() == ["e50", "e1"] and gs.sequence.duplicates == 0


async def test_a_nesting_bomb_on_a_node_topic_is_counted_not_raised(broker: Mosquitto) -> None:
    bomb = b'{"a":' * 100_000 + b"1" + b"}" * 100_000  # anyone who can publish there can
    async with GroundSession(broker.url(), "n1") as gs, broker_client(broker.url(), None) as node:
        await node.publish("cupola/v1/n1/event", bomb, qos=1)
        await node.publish("cupola/v1/n1/cmd", bomb, qos=1)  # the session hears its own topic
        good = {"name": "x", "severity": "info", "message": "", "source": "d", "data": {},
                "ts": 1.0}  # fmt: skip
        await node.publish("cupola/v1/n1/event", envelope("event", good, seq=1), qos=1)
        await gs.wait_for(lambda: gs.event_names() == ["x"], 10, "the good event")
    assert gs.malformed == 2 and gs.link.failed_messages == 0


async def test_a_flight_controllers_command_goes_on_the_priority_topic(broker: Mosquitto) -> None:
    topics: list[str] = []
    async with GroundSession(broker.url(), "n1") as gs:
        gs.on_message = lambda topic, _payload, _at: topics.append(topic)
        for role in (Role.FLIGHT_CONTROLLER, Role.DIRECTOR, Role.CREW):
            key = create_key(role, f"{role.value}-1")
            await gs.publish_command(sign_command(key, "status", {}))
        good = {"name": "x", "severity": "info", "message": "", "source": "d", "data": {},
                "ts": 1.0}  # fmt: skip
        await gs.link.publish("cupola/v1/n1/event", envelope("event", good, seq=1))
        await gs.wait_for(lambda: gs.event_names() == ["x"], 10, "the event behind them")
    assert topics[:3] == ["cupola/v1/n1/cmd/priority", "cupola/v1/n1/cmd", "cupola/v1/n1/cmd"]
