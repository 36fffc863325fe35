"""Device states: built only when published, at most `state_rate_hz` per device, and a device
that comes online is published at once (virtual time: exact whatever the load)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiomqtt
import msgspec
import pytest

from firmware_host.clock import Clock
from firmware_host.config import MqttConfig
from firmware_host.events import EventBus
from firmware_host.groundlink.latest import LatestStates
from firmware_host.groundlink.mqtt import STATES_PER_TURN, GroundLink
from firmware_host.groundlink.outbox import Outbox
from firmware_host.groundlink.pacing import Pacer
from firmware_host.groundlink.stream import StreamPublisher
from protocols import ground
from tests.virtual_time import run_virtual


class Sent:
    """Stands in for paho's MQTTMessageInfo."""

    def __init__(self, rc: int = 0) -> None:
        self.rc = rc
        self.acknowledged = False

    def is_published(self) -> bool:
        return self.acknowledged


class RecordingClient:
    """Stands in for the session's paho client: notes what was published, and when (loop
    time); `acks`: whether the broker acknowledges at once."""

    def __init__(self, *, acks: bool = True, rc: int = 0) -> None:
        self.published: list[tuple[float, str, bytes]] = []
        self.sent: list[Sent] = []
        self.acks = acks
        self.rc = rc

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> Sent:
        assert qos == 1 and retain
        sent = Sent(self.rc)
        sent.acknowledged = self.acks
        self.sent.append(sent)
        if self.rc == 0:
            self.published.append((asyncio.get_running_loop().time(), topic, payload))
        return sent


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
        birth=lambda _: pytest.fail("no birth here"), limits=list, backlog=dict, on_command=_ignore,
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
        publisher = asyncio.create_task(ground_link._publish_states(LatestStates(client)))
        ground_link.update_state("key", snapshot_of("key", builds), at_once=True)
        await asyncio.sleep(0.01)
        for _ in range(9):  # nine more polls of the key light inside one interval (20 Hz)
            ground_link.update_state("key", snapshot_of("key", builds))
            await asyncio.sleep(0.05)
        ground_link.update_state("fill", snapshot_of("fill", builds), at_once=True)  # online
        await asyncio.sleep(0.001)
        fill_out = [at for at, topic, _ in client.published if topic.endswith("/state/fill")]
        assert fill_out and fill_out[0] < 0.46  # not held until the key's interval is over
        await asyncio.sleep(1.0)
        publisher.cancel()

    run_virtual(main())
    key_out = [at for at, topic, _ in client.published if topic.endswith("/state/key")]
    assert key_out[0] == 0.0  # the first state of a device that came online: at once
    # one snapshot per publication (the crew's local/ copy and the ground's share it), not
    # one per poll
    assert builds.count("key") == len(key_out) // 2 < 10
    gaps = [b - a for a, b in zip(key_out[::2], key_out[2::2], strict=False)]
    assert all(gap >= 0.5 - 1e-9 for gap in gaps), key_out  # the rate is kept otherwise


def _crew_and_ground(client: RecordingClient) -> tuple[list[str], list[str]]:
    """The devices whose states went to the crew (local/) and to the ground, in order."""
    topics = [topic for _, topic, _ in client.published]
    crew = [t.rsplit("/", 1)[1] for t in topics if f"/{ground.LOCAL_STATE}/" in t]
    to_ground = [t.rsplit("/", 1)[1] for t in topics if "/local/" not in t]
    return crew, to_ground


def test_a_round_of_many_states_lets_polls_run_between_its_turns_and_sends_every_one(
    tmp_path: Path,
) -> None:
    """40 devices' states in one round: published STATES_PER_TURN at a time with the loop
    turning in between (a poll due meanwhile waits for one turn, not the round), and every
    state still goes out, to the crew and to the ground."""
    ground_link = link(tmp_path)
    client = RecordingClient()
    builds: list[str] = []
    devices = [f"dev{index:02d}" for index in range(40)]
    published_when_the_poll_ran: list[int] = []

    async def main() -> None:
        ground_link.flowing.set()
        for device in devices:
            ground_link.update_state(device, snapshot_of(device, builds))
        publisher = asyncio.create_task(ground_link._publish_states(LatestStates(client)))
        await asyncio.sleep(0)  # the round has started
        due_at = len(client.published)
        loop = asyncio.get_running_loop()
        loop.call_soon(lambda: published_when_the_poll_ran.append(len(client.published)))
        await asyncio.sleep(0.1)
        publisher.cancel()
        assert 0 < due_at < 80  # the poll fell due in the middle of the round...
        assert published_when_the_poll_ran[0] - due_at <= STATES_PER_TURN  # ...and waited a turn

    run_virtual(main())
    crew, to_ground = _crew_and_ground(client)
    assert sorted(crew) == devices and sorted(to_ground) == devices


class HoldingClient(RecordingClient):
    """Holds the stream (clears `flowing`) once `after` states have gone to the ground."""

    def __init__(self, flowing: asyncio.Event, after: int) -> None:
        super().__init__()
        self.flowing, self.after = flowing, after

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> Sent:
        sent = super().publish(topic, payload, qos, retain)
        if len(_crew_and_ground(self)[1]) == self.after:
            self.flowing.clear()
        return sent


def test_a_hold_in_the_middle_of_a_round_stops_the_grounds_states_and_release_sends_them(
    tmp_path: Path,
) -> None:
    ground_link = link(tmp_path)
    client = HoldingClient(ground_link.flowing, after=STATES_PER_TURN)
    builds: list[str] = []
    devices = [f"dev{index:02d}" for index in range(40)]

    async def main() -> None:
        ground_link.flowing.set()
        for device in devices:
            ground_link.update_state(device, snapshot_of(device, builds))
        publisher = asyncio.create_task(ground_link._publish_states(LatestStates(client)))
        await asyncio.sleep(0.2)
        assert not ground_link.flowing.is_set()
        assert len(_crew_and_ground(client)[1]) == STATES_PER_TURN  # none more while held
        client.after = -1
        ground_link.flowing.set()  # released
        ground_link.update_state(devices[0], snapshot_of(devices[0], builds))  # a poll
        await asyncio.sleep(1.0)
        publisher.cancel()

    run_virtual(main())
    assert set(_crew_and_ground(client)[1]) == set(devices)


def test_a_new_session_sends_the_crew_every_state_again_even_of_a_device_that_went_quiet(
    tmp_path: Path,
) -> None:
    """A light goes offline (its last state) and the session ends before the PUBACK, or in
    the middle of a round: the next session sends the crew that state again, though nothing
    about the light changes any more."""
    ground_link = link(tmp_path)
    first, second = RecordingClient(acks=False), RecordingClient()
    builds: list[str] = []
    devices = [f"dev{index:02d}" for index in range(40)]

    async def main() -> None:
        for device in devices:
            ground_link.update_state(device, snapshot_of(device, builds), at_once=True)
        session = asyncio.create_task(ground_link._publish_states(LatestStates(first)))
        await asyncio.sleep(0)  # the first turn went out, then the session ended
        session.cancel()
        await asyncio.sleep(0.1)
        session = asyncio.create_task(ground_link._publish_states(LatestStates(second)))
        await asyncio.sleep(0.1)
        session.cancel()

    run_virtual(main())
    assert 0 < len(_crew_and_ground(first)[0]) < len(devices)
    assert sorted(_crew_and_ground(second)[0]) == devices


def test_a_state_waits_while_its_previous_one_is_unacknowledged_and_then_goes_out_latest(
    tmp_path: Path,
) -> None:
    ground_link = link(tmp_path)
    client = RecordingClient(acks=False)  # the broker sits on its PUBACKs
    builds: list[str] = []

    async def main() -> None:
        ground_link.flowing.set()
        publisher = asyncio.create_task(ground_link._publish_states(LatestStates(client)))
        for _ in range(40):  # 2 s of polls at 20 Hz: four state rounds
            ground_link.update_state("key", snapshot_of("key", builds))
            await asyncio.sleep(0.05)
        held = len(client.published)
        for sent in client.sent:
            sent.acknowledged = True  # the PUBACKs come at last
        await asyncio.sleep(0.6)
        publisher.cancel()
        assert held == 2  # one local, one ground copy: the others waited, none queued up
        assert len(client.published) == 4  # then the latest of each went out

    run_virtual(main())


def test_a_state_paho_cannot_queue_ends_the_session_as_a_broken_link(tmp_path: Path) -> None:
    ground_link = link(tmp_path)
    client = RecordingClient(rc=4)  # MQTT_ERR_NO_CONN

    async def main() -> None:
        ground_link.update_state("key", snapshot_of("key", []), at_once=True)
        with pytest.raises(aiomqtt.MqttError, match="state not published"):
            await ground_link._publish_states(LatestStates(client))

    run_virtual(main())


def test_a_device_that_comes_online_goes_out_at_once_even_behind_an_unacknowledged_state(
    tmp_path: Path,
) -> None:
    ground_link = link(tmp_path)
    client = RecordingClient(acks=False)

    async def main() -> None:
        ground_link.flowing.set()
        publisher = asyncio.create_task(ground_link._publish_states(LatestStates(client)))
        ground_link.update_state("key", snapshot_of("key", []), at_once=True)  # not yet online
        await asyncio.sleep(0.1)
        ground_link.update_state("key", snapshot_of("key", []), at_once=True)  # online now
        await asyncio.sleep(0.001)
        publisher.cancel()

    run_virtual(main())
    times = [at for at, topic, _ in client.published if topic.endswith("/state/key")]
    assert times == [0.0, 0.0, 0.1, 0.1]  # local and ground copies, each time at once


def test_paho_holds_no_queue_of_its_own_on_the_session(tmp_path: Path) -> None:
    """The stream's window, one state per topic and the crew's copies already bound what is in
    flight. A limit of paho's own (it was the window + 100) made paho walk every message it
    held at each PUBACK, to find one it had queued: 26 % of its PUBACK handling with a round
    of 128 states outstanding. 0 is paho's "no limit"."""
    ground_link = link(tmp_path)

    async def main() -> int:
        return ground_link._make_client()._client.max_inflight_messages

    assert asyncio.run(main()) == 0


def test_a_state_travels_as_the_json_object_its_dict_would_be(tmp_path: Path) -> None:
    """States are encoded from their Struct, without building the dict first: the bytes are
    those of the dict, and the ground reads them back as the same snapshot."""
    ground_link = link(tmp_path)
    ground_link.clock = Clock(wall=lambda: 1_800_000_000.25)
    snapshot = ground.DeviceSnapshot(
        device="cam", kind="camera", online=True, offline_reason=None,
        identity={"model": "X", "serial": "7"}, status={"state": "idle", "flags": ["a"]},
        status_at=1.5, missed_polls=2, link={"rtt_histogram": {"0.5": 3}},
        camera_settings={"bitrate_kbps": 700_000}, reports=["media"],
    )  # fmt: skip
    as_struct = ground_link._envelope(ground.STATE, snapshot)
    as_dict = ground_link._envelope(ground.STATE, dict(msgspec.to_builtins(snapshot)))
    assert as_struct == as_dict
    body = ground.decode(as_struct).body
    assert msgspec.convert(body, ground.DeviceSnapshot) == snapshot


def test_changes_published_waits_for_the_crew_and_ground_copies_of_a_device_that_came(
    tmp_path: Path,
) -> None:
    """What the stream's gate waits for at start: no device that came or went has its state
    still to hand to paho. Both sides: clear from the change until both copies are out (the
    ground's while it flows), set again once they are; a poll's update changes nothing."""
    ground_link = link(tmp_path)
    client = RecordingClient()
    seen: list[tuple[float, bool, int]] = []

    def look() -> None:
        now = round(asyncio.get_running_loop().time(), 6)
        seen.append((now, ground_link.changes_published.is_set(), len(client.published)))

    async def main() -> None:
        publisher = asyncio.create_task(ground_link._publish_states(LatestStates(client)))
        await asyncio.sleep(0.01)
        look()  # nothing came or went yet
        ground_link.update_state("key", snapshot_of("key", []), at_once=True)
        look()
        await asyncio.sleep(0.05)
        look()  # the crew's copy is out; the ground is out of reach
        ground_link.flowing.set()
        ground_link._state_wakeup.set()
        await ground_link.changes_published.wait()
        look()  # the ground's copy: with the states' next round (the birth had it already)
        ground_link.update_state("fill", snapshot_of("fill", []), at_once=True)
        await ground_link.changes_published.wait()
        look()  # flowing: both copies at once
        ground_link.update_state("fill", snapshot_of("fill", []))  # a poll: no change
        look()
        publisher.cancel()

    run_virtual(main())
    assert seen == [
        (0.01, True, 0), (0.01, False, 0), (0.06, False, 1), (0.5, True, 2), (0.5, True, 4),
        (0.5, True, 4),
    ]  # fmt: skip
