"""The link notice (flowing or held, with the backlog and the limits) is built from those two
alone: a whole birth certificate (every device's state) is built only for a birth."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import aiomqtt
import pytest

from firmware_host.budget.downlink import Hold
from firmware_host.config import MqttConfig
from firmware_host.events import EventBus
from firmware_host.groundlink.mqtt import GroundLink
from firmware_host.groundlink.outbox import Outbox
from firmware_host.groundlink.pacing import Pacer
from firmware_host.groundlink.stream import StreamPublisher
from protocols import ground
from tests.virtual_time import run_virtual

LIMITS = [{"device": "cam-a", "limit": "camera.temperature", "level": "yellow"}]
BACKLOG = {"messages": 3, "bytes": 420}


class Broker:
    """Stands in for the session's aiomqtt client: notes each publish."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, int, bool]] = []

    async def publish(
        self, topic: str, payload: bytes, *, qos: int, retain: bool, timeout: float | None
    ) -> None:
        self.published.append((topic, payload, qos, retain))


async def _ignore(_: bytes) -> None:
    return None


@pytest.mark.parametrize("held", [False, True])
def test_a_link_notice_carries_the_backlog_and_the_limits_without_a_birth(
    tmp_path: Path, held: bool
) -> None:
    outbox = Outbox(tmp_path / "outbox.db", max_bytes=10_000_000)
    link = GroundLink(
        "n", MqttConfig(), StreamPublisher("n", outbox, Pacer()), EventBus(),
        birth=lambda _: pytest.fail("a link notice built a whole birth"),
        limits=lambda: LIMITS, backlog=lambda: BACKLOG, on_command=_ignore,
        on_priority_command=_ignore, next_bd_seq=lambda: 1, stream_id=1,
    )  # fmt: skip
    if held:
        link.hold = Hold("pass over the South Atlantic", until=1_800_000_000.0)
    broker = Broker()

    async def notice() -> None:
        await link._publish_link(cast("aiomqtt.Client", broker))

    run_virtual(notice())
    ((topic, payload, qos, retain),) = broker.published
    assert topic == ground.topic("n", ground.LINK) and qos == 1 and retain
    body: dict[str, Any] = ground.decode(payload).body
    assert body["state"] == ("held" if held else "flowing")
    assert body["backlog"] == BACKLOG and body["limits"] == LIMITS
    outbox.close()
