"""The crew's copies of events and results (local/ topics): none lost to a broker session
that was not up yet or ended, none sent again once acknowledged, memory bounded."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import paho.mqtt.client as paho
import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_host.config import parse_config
from firmware_host.daemon import Daemon
from firmware_host.groundlink.local import GIVE_UP_AFTER, LocalCopies
from hil.broker import Mosquitto
from protocols import ground
from protocols.messages.common import Severity
from tests.harness import Credentials, daemon_config, flowing_daemon, until


@dataclass
class Sent:
    topic: str
    payload: bytes
    rc: int = paho.MQTT_ERR_SUCCESS
    acknowledged: bool = False

    def is_published(self) -> bool:
        if self.rc != paho.MQTT_ERR_SUCCESS:  # as paho's MQTTMessageInfo does
            raise RuntimeError(f"Message publish failed: {paho.error_string(self.rc)}")
        return self.acknowledged


@dataclass
class FakePaho:
    """A session's paho client: records each publish; the broker acknowledges in order."""

    refusing: bool = False  # the connection is going: paho will not queue
    sent: list[Sent] = field(default_factory=list)

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> Sent:
        assert qos == 1
        if self.refusing:
            return Sent(topic, payload, rc=paho.MQTT_ERR_NO_CONN)
        self.sent.append(Sent(topic, payload))
        return self.sent[-1]

    def acknowledge(self, count: int) -> None:
        for sent in [s for s in self.sent if not s.acknowledged][:count]:
            sent.acknowledged = True


def test_copies_made_before_the_session_go_first_and_in_order() -> None:
    copies, client = LocalCopies(), FakePaho()
    copies.publish("t", b"1")
    copies.publish("t", b"2")
    copies.attach(client)
    copies.publish("t", b"3")
    assert [s.payload for s in client.sent] == [b"1", b"2", b"3"]
    client.acknowledge(3)
    assert copies.waiting == 0


def test_a_session_that_ends_before_the_puback_leaves_the_copy_for_the_next() -> None:
    copies, first, second = LocalCopies(), FakePaho(), FakePaho()
    copies.attach(first)
    copies.publish("t", b"acknowledged")
    copies.publish("t", b"in flight")
    first.acknowledge(1)
    copies.detach()
    copies.publish("t", b"while away")
    copies.attach(second)
    assert [s.payload for s in second.sent] == [b"in flight", b"while away"]


def test_a_long_outage_keeps_the_newest_and_says_how_many_went(
    caplog: pytest.LogCaptureFixture,
) -> None:
    copies, client = LocalCopies(limit=3), FakePaho()
    for number in range(5):
        copies.publish("t", str(number).encode())
    with caplog.at_level(logging.WARNING):
        copies.attach(client)
    assert [s.payload for s in client.sent] == [b"2", b"3", b"4"]
    assert "2 crew copies of events and results were dropped" in caplog.text


def test_a_copy_the_broker_will_not_take_is_dropped_after_three_sessions_end_on_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    copies = LocalCopies()
    copies.publish("t", b"poison")  # the broker drops the connection instead of a PUBACK
    copies.publish("t", b"fine")
    for _ in range(GIVE_UP_AFTER):
        copies.attach(FakePaho())
        with caplog.at_level(logging.WARNING):
            copies.detach()
    assert "not acknowledged in 3 sessions" in caplog.text
    client = FakePaho()
    copies.attach(client)
    assert [s.payload for s in client.sent] == [b"fine"]
    assert copies.dropped_total == 1


def test_a_broker_that_stalls_and_restarts_costs_no_copy() -> None:
    """Sessions that end on a keepalive, long after the copy went, do not make it a suspect."""
    now = [0.0]
    copies = LocalCopies(monotonic=lambda: now[0])
    copies.publish("t", b"1")
    for _ in range(2 * GIVE_UP_AFTER):
        copies.attach(FakePaho())
        now[0] += 15.0  # the broker stalled; the session ends on its keepalive
        copies.detach()
    client = FakePaho()
    copies.attach(client)
    assert [s.payload for s in client.sent] == [b"1"] and copies.dropped_total == 0


def test_a_copy_behind_a_slow_start_is_not_blamed_for_it() -> None:
    """Only a copy that was sent and left unacknowledged counts a lost session."""
    copies, refusing = LocalCopies(), FakePaho(refusing=True)
    copies.publish("t", b"1")
    for _ in range(GIVE_UP_AFTER + 1):
        copies.attach(refusing)
        copies.detach()
    client = FakePaho()
    copies.attach(client)
    assert [s.payload for s in client.sent] == [b"1"]


def test_the_latest_retained_list_is_never_kept_for_later() -> None:
    copies, client = LocalCopies(), FakePaho()
    copies.publish_latest("limits", b"stale")  # every session publishes the latest itself
    copies.attach(client)
    copies.publish_latest("limits", b"now")
    assert [s.payload for s in client.sent] == [b"now"]


OPS = st.lists(
    st.one_of(
        st.just(("publish", 0)),
        st.just(("attach", 0)),
        st.just(("detach", 0)),
        st.just(("refuse", 0)),
        st.tuples(st.just("acknowledge"), st.integers(1, 4)),
    ),
    max_size=60,
)


@given(OPS)
def test_every_copy_reaches_the_broker_once_acknowledged_in_order_within_the_bound(
    ops: list[tuple[str, int]],
) -> None:
    limit = 5
    copies, clients = LocalCopies(limit=limit), [FakePaho()]
    attached: FakePaho | None = None
    published = 0
    for op, count in ops:
        if op == "publish":
            copies.publish("t", str(published).encode())
            published += 1
        elif op == "attach" and attached is None:
            attached = FakePaho()
            clients.append(attached)
            copies.attach(attached)
        elif op == "detach" and attached is not None:
            copies.detach()
            attached = None
        elif op == "refuse" and attached is not None:
            attached.refusing = True
        elif op == "acknowledge" and attached is not None:
            attached.acknowledge(count)
        assert copies.waiting <= limit
    if attached is not None:
        copies.detach()
    final = FakePaho()  # the broker back for good, acknowledging everything
    clients.append(final)
    copies.attach(final)
    final.acknowledge(limit)
    acknowledged: list[int] = []
    for client in clients:
        numbers = [int(s.payload) for s in client.sent]
        assert numbers == sorted(numbers), "each session sends oldest first"
        for sent in client.sent:
            if sent.acknowledged:
                number = int(sent.payload)
                assert number not in acknowledged, "sent again after its PUBACK"
                acknowledged.append(number)
    assert copies.waiting == 0
    assert acknowledged == sorted(acknowledged), "acknowledged in the order they were made"
    assert len(acknowledged) + copies.dropped_total == published, "each kept or counted"


async def test_an_alarm_raised_while_the_broker_is_down_reaches_the_crew_when_it_is_back(
    tmp_path: Path,
) -> None:
    """End to end: the crew's laptop keeps a persistent session on the onboard broker; the
    broker goes down, an alarm is raised, the broker comes back: the alarm reaches the crew."""
    broker = Mosquitto(tmp_path / "broker", persistence=True).start()
    credentials = Credentials(tmp_path)
    daemon = Daemon(parse_config(daemon_config(
        {}, {}, broker.url(), tmp_path / "state", keyring=credentials.keyring
    )))  # fmt: skip
    crew_topic = ground.topic("test-node", ground.LOCAL_EVENT)
    crew = {"hostname": "127.0.0.1", "port": broker.port, "identifier": "crew-laptop"}
    stop = asyncio.Event()
    async with aiomqtt.Client(**crew, clean_session=False) as laptop:  # type: ignore[arg-type]
        await laptop.subscribe(crew_topic, qos=1)
    runner = asyncio.create_task(daemon.run(stop))
    try:
        await until(daemon.ground.connected.is_set, "the daemon's broker session is up")
        broker.stop()
        await until(lambda: not daemon.ground.connected.is_set(), "the session noticed")
        daemon.bus.emit("limit.test.red", Severity.CRITICAL, "raised while the broker is down")
        broker.start()
        async with aiomqtt.Client(**crew, clean_session=False) as laptop:  # type: ignore[arg-type]
            async with asyncio.timeout(20):
                async for message in laptop.messages:
                    body = ground.decode(bytes(message.payload)).body  # type: ignore[arg-type]
                    if body["name"] == "limit.test.red":
                        break
        await until(lambda: daemon.ground.local.waiting == 0, "every copy acknowledged")
    finally:
        stop.set()
        await runner
        broker.stop()


async def test_a_burst_of_local_copies_is_not_reported_as_a_backlog(
    tmp_path: Path, broker: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    async with flowing_daemon(tmp_path, broker.url()) as daemon:
        with caplog.at_level(logging.WARNING):
            for number in range(100):  # in one turn, as 64 devices coming online
                daemon.bus.emit("test.burst", Severity.INFO, f"burst {number}")
            await until(lambda: daemon.stream.published >= 100, "the burst delivered")
            await until(lambda: daemon.ground.local.waiting == 0, "the crew's copies delivered")
    assert not [r for r in caplog.records if "pending publish calls" in r.getMessage()]
