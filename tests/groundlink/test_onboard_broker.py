"""The shipped onboard broker keeps the local/ topics onboard and lets the node write them."""

from __future__ import annotations

import re

from tests.groundlink.brokers import ONBOARD_ACL, ONBOARD_CONF


def test_the_bridge_carries_no_local_topic_and_every_stream_topic() -> None:
    bridged = re.findall(r"^topic (\S+) (out|in|both)", ONBOARD_CONF.read_text(), re.M)
    assert bridged, "no bridged topics found"
    for pattern, _ in bridged:
        assert "/local" not in pattern and not pattern.endswith("#"), pattern
    out = {pattern.rsplit("/", 1)[-1] for pattern, direction in bridged if direction == "out"}
    assert {"birth", "death", "event", "telemetry", "result", "link"} <= out


def test_the_node_may_write_its_local_topics_onboard() -> None:
    acl = ONBOARD_ACL.read_text()
    node = acl[acl.index("user iss-film") : acl.index("user crew-laptop")]
    assert "topic write cupola/v1/iss-film/local/#" in node
    assert "topic write cupola/v1/iss-film/link" in node


def test_flight_controllers_commands_cross_on_a_bridge_connection_of_their_own() -> None:
    """One bridge connection is one queue: a flood on cmd must not sit in front of them."""
    sections = re.split(r"^connection ", ONBOARD_CONF.read_text(), flags=re.M)[1:]
    routes = {s.split()[0]: re.findall(r"^topic (\S+) in", s, re.M) for s in sections}
    assert routes["ground-priority"] == ["cupola/v1/iss-film/cmd/priority"]
    assert "cupola/v1/iss-film/cmd/priority" not in routes["ground"]


def test_the_crew_laptop_may_not_write_the_priority_topic_onboard() -> None:
    acl = ONBOARD_ACL.read_text()
    crew = acl[acl.index("user crew-laptop") :]
    assert not re.search(r"^topic (write|readwrite) \S*cmd/priority", crew, re.M)
    assert "topic read cupola/v1/iss-film/cmd/priority" in acl[: acl.index("user crew-laptop")]
