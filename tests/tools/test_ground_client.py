"""The ground session drops what no node sends, and keeps listening."""

from __future__ import annotations

import json

from hil.broker import Mosquitto
from tools.broker_link import broker_client
from tools.ground_client import GroundSession


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
