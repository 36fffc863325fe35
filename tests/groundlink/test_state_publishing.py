"""Device states: built only when published, at most `state_rate_hz` per device, and a device
that comes online is published at once (virtual time: exact whatever the load)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from firmware_host.config import MqttConfig
from firmware_host.events import EventBus
from firmware_host.groundlink.mqtt import (
    STATE_ROUND_TIMEOUT_S,
    STATES_IN_FLIGHT,
    GroundLink,
    _publish_all,
)
from firmware_host.groundlink.outbox import Outbox
from firmware_host.groundlink.pacing import Pacer
from firmware_host.groundlink.stream import StreamPublisher
from protocols import ground
from tests.virtual_time import run_virtual


class RecordingClient:
    """Stands in for aiomqtt.Client: notes what was published, and when (loop time)."""

    def __init__(self) -> None:
        self.published: list[tuple[float, str]] = []

    async def publish(self, topic: str, payload: bytes, **_: Any) -> None:
        self.published.append((asyncio.get_running_loop().time(), topic))


def snapshot_of(device: str, builds: list[str]) -> Any:
    def build() -> ground.DeviceSnapshot:
        builds.append(device)
        return ground.DeviceSnapshot(
            device=device, kind="light", online=True, offline_reason=None, identity=None,
            status=None, status_at=None, missed_polls=0, link={},
        )  # fmt: skip

    return build


def link(tmp_path: Path) -> GroundLink:
    outbox = Outbox(tmp_path / "outbox.db", max_bytes=10_000_000)
    stream = StreamPublisher("n", outbox, Pacer())
    return GroundLink(
        "n", MqttConfig(state_rate_hz=2.0), stream, EventBus(),
        birth=lambda _: pytest.fail("no birth here"), on_command=_ignore,
        on_priority_command=_ignore, next_bd_seq=lambda: 1, stream_id=1,
    )  # fmt: skip


async def _ignore(_: bytes) -> None:
    return None


def test_polls_between_publications_build_nothing_and_an_arrival_goes_out_at_once(
    tmp_path: Path,
) -> None:
    ground_link = link(tmp_path)
    client = RecordingClient()
    builds: list[str] = []

    async def main() -> None:
        ground_link.flowing.set()
        publisher = asyncio.create_task(ground_link._publish_states(client))  # type: ignore[arg-type]
        ground_link.update_state("key", snapshot_of("key", builds), at_once=True)
        await asyncio.sleep(0.01)
        for _ in range(9):  # nine more polls of the key light inside one interval (20 Hz)
            ground_link.update_state("key", snapshot_of("key", builds))
            await asyncio.sleep(0.05)
        ground_link.update_state("fill", snapshot_of("fill", builds), at_once=True)  # online
        await asyncio.sleep(0.001)
        fill_out = [at for at, topic in client.published if topic.endswith("/state/fill")]
        assert fill_out and fill_out[0] < 0.46  # not held until the key's interval is over
        await asyncio.sleep(1.0)
        publisher.cancel()

    run_virtual(main())
    key_out = [at for at, topic in client.published if topic.endswith("/state/key")]
    assert key_out[0] == 0.0  # the first state of a device that came online: at once
    # one snapshot per publication (the crew's local/ copy and the ground's share it), not
    # one per poll
    assert builds.count("key") == len(key_out) // 2 < 10
    gaps = [b - a for a, b in zip(key_out[::2], key_out[2::2], strict=False)]
    assert all(gap >= 0.5 - 1e-9 for gap in gaps), key_out  # the rate is kept otherwise


class SlowBroker:
    """Stands in for aiomqtt.Client: each PUBACK comes `ack_s` after its publish (None:
    never); notes how many publishes awaited their PUBACK at once."""

    def __init__(self, ack_s: float | None) -> None:
        self.ack_s = ack_s
        self.in_flight = 0
        self.most_in_flight = 0
        self.acked: list[str] = []

    async def publish(self, topic: str, payload: bytes, **_: Any) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await (asyncio.sleep(self.ack_s) if self.ack_s is not None else asyncio.Event().wait())
            self.acked.append(topic)
        finally:
            self.in_flight -= 1


def test_a_round_of_states_is_bounded_in_flight_and_sent_whole() -> None:
    broker = SlowBroker(ack_s=0.001)
    messages = [(f"state/dev{i:02d}", b"{}") for i in range(64)]

    async def publish_round() -> float:
        start = asyncio.get_running_loop().time()
        await _publish_all(broker, messages)  # type: ignore[arg-type]
        return asyncio.get_running_loop().time() - start

    took = run_virtual(publish_round())
    assert sorted(broker.acked) == sorted(topic for topic, _ in messages)
    assert broker.most_in_flight == STATES_IN_FLIGHT
    assert took == pytest.approx(0.001 * 64 / STATES_IN_FLIGHT)  # a round trip per chunk


def test_a_round_of_states_never_acknowledged_ends_the_session_as_a_broken_link() -> None:
    broker = SlowBroker(ack_s=None)

    async def publish_round() -> float:
        start = asyncio.get_running_loop().time()
        with pytest.raises(aiomqtt.MqttError, match="not acknowledged within"):
            await _publish_all(broker, [("state/a", b"{}"), ("state/b", b"{}")])  # type: ignore[arg-type]
        return asyncio.get_running_loop().time() - start

    assert run_virtual(publish_round()) == pytest.approx(STATE_ROUND_TIMEOUT_S)
    assert broker.in_flight == 0  # the publishes were cancelled, none left waiting
