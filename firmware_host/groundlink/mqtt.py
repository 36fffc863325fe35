"""The MQTT session with the ground: connect, birth, death (Last Will), stream, commands.

The daemon talks to one broker: the ground broker directly, or an onboard broker bridged to
the ground. The ground is reachable when the connection is up and, with a bridge, when the
bridge reports itself connected (mosquitto's bridge notification topic). Only then does the
stream drain: while the ground is out of reach everything waits in the outbox, where it is
ordered, paced and flagged historical when it finally goes out. Every time the ground becomes
reachable a birth certificate with the full state goes first.

Flight controllers' commands come on a second connection of their own, subscribed to the
priority topic only: the broker queues each connection separately, so a flood on the command
topic (which this node reads in order, one message at a time) cannot delay them; the ACL lets
only the flight controllers' broker users write that topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any, Final, cast

import aiomqtt
import msgspec

from firmware_host.backoff import Backoff
from firmware_host.budget.downlink import Hold
from firmware_host.clock import SYSTEM, Clock
from firmware_host.config import BrokerAddress, MqttConfig
from firmware_host.events import EventBus
from firmware_host.groundlink import paho_puback
from firmware_host.groundlink.latest import LatestStates
from firmware_host.groundlink.local import LocalCopies
from firmware_host.groundlink.sender import PahoSender
from firmware_host.groundlink.sockets import NO_DELAY
from firmware_host.groundlink.stream import StreamPublisher
from firmware_host.tasks import being_cancelled, stop_if_cancelled
from protocols import ground
from protocols.messages.common import Severity

# How every session's client is built, whatever the broker (bench/groundlink.py builds its
# clients with these too). No in-flight limit of paho's own: the stream's window, one state per
# topic and the crew's copies bound what is in flight; with a limit, paho walks every message it
# holds at each PUBACK to find one it queued (O(n) per acknowledgement).
SESSION_OPTIONS: Final[Mapping[str, Any]] = MappingProxyType({
    "clean_session": False,
    "max_inflight_messages": 0,
    "timeout": 10,
    "socket_options": NO_DELAY,
})  # fmt: skip

log = logging.getLogger(__name__)

RECONNECT_FIRST_S = 0.1
# A round's states go out this many at a time, the loop turning in between: polls due meanwhile
# run, and the PUBACKs so far are read. At 64 devices, 128 publishes at once took 11-14 ms of
# CPU in one callback and reading their PUBACKs up to 13 ms more, twice a second, every poll
# due waiting behind them.
STATES_PER_TURN = 16
GOODBYE_TIMEOUT_S = 5.0  # the death's own PUBACK waits 2 s of it

CommandHandler = Callable[[bytes], Awaitable[None]]


class GroundLink:
    def __init__(
        self,
        node: str,
        config: MqttConfig,
        stream: StreamPublisher,
        bus: EventBus,
        *,
        birth: Callable[[float], ground.BirthBody],
        limits: Callable[[], list[dict[str, Any]]],
        backlog: Callable[[], dict[str, int]],
        on_command: CommandHandler,
        on_priority_command: CommandHandler,
        next_bd_seq: Callable[[], int],
        stream_id: int,
        clock: Clock = SYSTEM,
    ) -> None:
        self.node = node
        self.clock = clock
        self.config = config
        self.address = BrokerAddress.parse(config.url)
        self.stream = stream
        self.bus = bus
        self._birth = birth
        self._limits = limits  # what a link notice carries: not a whole birth built for it
        self._backlog = backlog
        self._on_command = on_command
        self._on_priority_command = on_priority_command
        self._next_bd_seq = next_bd_seq
        self.stream_id = stream_id
        self._states: dict[str, Callable[[], ground.DeviceSnapshot]] = {}
        self._dirty: set[str] = set()
        self._ground_dirty: set[str] = set()  # states the ground has not had yet
        self._ground_at_once: set[str] = set()  # of those, devices that came or went
        self._state_wakeup = asyncio.Event()
        self._state_at_once = asyncio.Event()
        self._at_once: set[str] = set()  # came online or went offline: published at once
        # No device that came or went waits for its state to reach paho, the crew's copy or
        # the ground's (clear while the ground is out of reach): what is published after it
        # goes behind it.
        self.changes_published = asyncio.Event()
        self.changes_published.set()
        self._client: aiomqtt.Client | None = None
        self.local = LocalCopies(monotonic=clock.monotonic)  # kept until our broker has them
        self._serving: asyncio.Task[None] | None = None  # the current session's work
        self._goodbye: str | None = None  # the death's reason, once the node is going
        self._said_goodbye = asyncio.Event()
        self.bd_seq = 0
        self.connected = asyncio.Event()  # to our broker
        self.reachable = asyncio.Event()  # to the ground (through the bridge, if any)
        self.hold: Hold | None = None  # the housekeeping class may not send now
        self._hold_changed = False  # not yet announced: the ground-facing task acts on it
        self._bridge_up = False  # what the bridge last said (with a bridge_state_topic)
        self._ground_changed = asyncio.Event()  # the hold or the bridge changed
        self.flowing = asyncio.Event()  # reachable and not held: the stream drains
        self.session_started = 0.0  # wall time the ground last became reachable
        self.connects = 0

    # -- what the daemon feeds in ----------------------------------------------------------

    def update_state(
        self, device: str, snapshot: Callable[[], ground.DeviceSnapshot], *, at_once: bool = False
    ) -> None:
        """Latest-wins retained state, published at most `state_rate_hz` per device; built
        (`snapshot()`) only when it is published. `at_once`: a change the ground should see
        without waiting out the rate (a device came online or went offline)."""
        self._states[device] = snapshot
        self._dirty.add(device)
        self._state_wakeup.set()
        if at_once:
            self._at_once.add(device)
            self._state_at_once.set()
            self.changes_published.clear()

    def publish_local_result(self, body: dict[str, Any]) -> None:
        """A command result, at once, for commanders on this broker (the crew during LOS).

        The same result also goes to the ground through the outbox; this copy is not
        sequenced and not bridged.
        """
        self._publish_local(ground.LOCAL_RESULT, ground.RESULT, body)

    def publish_local_event(self, body: dict[str, Any]) -> None:
        """An event (alarms included), at once, for the crew: the ground's copy may be held."""
        self._publish_local(ground.LOCAL_EVENT, ground.EVENT, body)

    def publish_local_limits(self, limits: list[dict[str, Any]]) -> None:
        """Every limit out of bounds now, retained: a crew laptop joining late sees them."""
        self._publish_local(ground.LOCAL_LIMITS, ground.LIMITS, {"limits": limits}, retain=True)

    def _publish_local(
        self, leaf: str, kind: str, body: dict[str, Any], *, retain: bool = False
    ) -> None:
        topic, payload = ground.topic(self.node, leaf), self._envelope(kind, body)
        if retain:
            self.local.publish_latest(topic, payload)
        else:
            self.local.publish(topic, payload)

    async def publish_file(self, leaf: str, payload: bytes, qos: int) -> bool:
        """Bulk traffic (the file downlink, its own allocation): only while the ground is
        reachable; False when it did not go. Never through the outbox or its pacer."""
        client = self._client
        if client is None or not self.reachable.is_set():
            return False
        try:
            await _publish(client, ground.topic(self.node, leaf), payload, qos=qos)
        except aiomqtt.MqttError as exc:
            log.debug("file segment not published: %s", exc)
            return False
        return True

    def set_hold(self, hold: Hold | None) -> None:
        """The budget says whether the stream may send; a change is announced, then applied."""
        if hold == self.hold:
            return
        self.hold = hold
        if hold is not None:
            self.flowing.clear()
        self._hold_changed = True
        self._ground_changed.set()

    async def rebirth(self) -> None:
        """Publish the birth certificate again (the ground asked for it)."""
        if self._client is not None and self.flowing.is_set():
            await self._publish_birth(self._client)

    # -- session ---------------------------------------------------------------------------

    def _envelope(self, kind: str, body: dict[str, Any] | msgspec.Struct) -> bytes:
        """A body built as its typed Struct (births, states) travels as the same JSON object:
        msgspec writes a Struct as the object its dict would be, so it is encoded as it is (a
        state's dict built first cost twice the encoding)."""
        return ground.encode(
            ground.Envelope(
                v=ground.SCHEMA_VERSION, node=self.node, kind=kind, ts=self.clock.wall(),
                body=cast(dict[str, Any], body), bd_seq=self.bd_seq, stream=self.stream_id,
            )
        )  # fmt: skip

    def _make_client(self, *, priority: bool = False) -> aiomqtt.Client:
        """The session's client; or, `priority`, the priority commands' (no will: the session
        connection's death certificate speaks for the node)."""
        paho_puback.install()  # before the first session: the PUBACKs it reads are the states'
        address = self.address
        tls_context = None
        if address.tls:
            tls_context = ssl.create_default_context(cafile=self.config.ca_file)
        death = self._envelope(ground.DEATH, {"reason": "connection lost"})
        identifier = self.config.client_id or f"cupola-{self.node}"
        will = aiomqtt.Will(ground.topic(self.node, ground.DEATH), death, qos=1, retain=True)
        return aiomqtt.Client(
            address.host,
            address.port,
            username=address.username,
            password=address.password,
            identifier=f"{identifier}-priority" if priority else identifier,
            will=None if priority else will,
            keepalive=self.config.keepalive_s,
            tls_context=tls_context,
            **SESSION_OPTIONS,
        )

    async def run(self) -> None:
        """The session and the priority commands' connection, each reconnecting on its own."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._run_priority())
            await self._run_session()

    async def _run_priority(self) -> None:
        backoff = Backoff(RECONNECT_FIRST_S, self.config.reconnect_max_s)
        while True:
            try:
                async with self._make_client(priority=True) as client:
                    topic = ground.topic(self.node, ground.PRIORITY_COMMAND)
                    await client.subscribe(topic, qos=1)
                    stop_if_cancelled()  # see _run_session
                    backoff.reset()
                    async for message in client.messages:
                        if isinstance(message.payload, bytes | bytearray):
                            await self._on_priority_command(bytes(message.payload))
            except aiomqtt.MqttError as exc:
                log.warning("priority command link down: %s", exc)
            stop_if_cancelled()  # a stop that aiomqtt turned into a dropped link
            await asyncio.sleep(backoff.next())

    async def _run_session(self) -> None:
        backoff = Backoff(RECONNECT_FIRST_S, self.config.reconnect_max_s)
        while True:
            self.bd_seq = self._next_bd_seq()
            said_goodbye = False
            try:
                async with self._make_client() as client:
                    self._client = client
                    await client.subscribe(ground.topic(self.node, ground.COMMAND), qos=1)
                    bridge = self.config.bridge_state_topic
                    if bridge:
                        await client.subscribe(bridge, qos=1)
                    # aiomqtt's connect and subscribe wait with 3.11's wait_for, which can
                    # return as a cancel comes and drop it: the stop still wins
                    stop_if_cancelled()
                    self.connects += 1
                    self.connected.set()
                    # aiomqtt's publish waits for each PUBACK: the crew's copies go to paho
                    self.local.attach(client._client)
                    self.publish_local_limits(self._limits())  # the crew's list now
                    backoff.reset()
                    said_goodbye = await self._serve_until_goodbye(client)
            except* aiomqtt.MqttError as errors:
                log.warning("broker link down: %s", "; ".join(str(e) for e in errors.exceptions))
            finally:
                self._client = None
                self.local.detach()
                self.connected.clear()
                self._ground_down("the node stops" if said_goodbye else "broker connection lost")
            if self._goodbye is not None:  # said, or no session left to say it on
                self._said_goodbye.set()
                return
            # a stop that came while the session was failing reached the session's task
            # group, which raised its children's MqttErrors instead: the stop still wins
            stop_if_cancelled()
            await asyncio.sleep(backoff.next())

    async def _serve_until_goodbye(self, client: aiomqtt.Client) -> bool:
        """The session's work until it fails or the node says goodbye on it (publish_death);
        True once the death is published.

        The work runs in a task of its own: Python 3.11's TaskGroup, when a child fails
        while it waits for them, cancels the task it runs in and never takes that back, and
        a supervised task that looks cancelled is not restarted."""
        if self._goodbye is None:  # not already going as this session came up
            serving = asyncio.create_task(self._serve(client), name="broker session")
            self._serving = serving
            try:
                await serving
            except asyncio.CancelledError:
                if self._goodbye is None or being_cancelled():
                    raise
            finally:
                self._serving = None
        self.local.detach()  # nothing is sent after the death: see publish_death
        try:
            await _publish(
                client, ground.topic(self.node, ground.DEATH),
                self._envelope(ground.DEATH, {"reason": self._goodbye}),
                qos=1, retain=True, timeout=2,
            )  # fmt: skip
        except aiomqtt.MqttError as exc:
            log.warning("could not publish death certificate: %s", exc)
            return False
        return True

    async def _serve(self, client: aiomqtt.Client) -> None:
        """One session's work; the listener never waits on a PUBACK, so a broker gone while
        the birth is on its way is noticed at once, not when aiomqtt gives up on it (10 s)."""
        self._bridge_up = False
        self._ground_changed.set()
        async with asyncio.TaskGroup() as group:
            group.create_task(self._listen(client))
            group.create_task(self._tell_the_ground(client))
            group.create_task(self._publish_states(LatestStates.of(client)))
            group.create_task(
                self.stream.drain(PahoSender.of(client), lambda: self.session_started, self.flowing)
            )

    async def _tell_the_ground(self, client: aiomqtt.Client) -> None:
        """Births, link notices and the start of the flow, one at a time in this one task: a
        hold or a bridge change that comes while a birth awaits its PUBACK is acted on right
        after it, never beside it (no second birth, no flow under a hold)."""
        bridged = bool(self.config.bridge_state_topic)
        while True:
            await self._ground_changed.wait()
            self._ground_changed.clear()
            if bridged and not self._bridge_up:
                self._ground_down("the bridge to the ground is down")
            elif not self.reachable.is_set():
                await self._ground_up(client)
            if self._hold_changed:
                self._hold_changed = False
                await self._announce_hold(client)

    async def _ground_up(self, client: aiomqtt.Client) -> None:
        """Said before the publishes, so a link lost during them is said after it."""
        self.reachable.set()
        hold = self.hold
        detail = f"stream held ({hold.reason})" if hold is not None else "backlog draining"
        self.bus.emit(
            "ground.link_up", Severity.INFO,
            f"ground reachable (bd_seq {self.bd_seq}); {detail}", bd_seq=self.bd_seq,
        )  # fmt: skip
        if hold is not None:
            await self._publish_link(client)  # the ground learns at once that it is blind
        else:
            await self._start_flowing(client)

    async def _start_flowing(self, client: aiomqtt.Client) -> None:
        """Birth (the state now), the link notice, then the states and the backlog; the flow
        starts only if the ground is still reachable and no hold came meanwhile."""
        self.session_started = self.clock.wall()
        await self._publish_birth(client)
        await self._publish_link(client)
        if self.hold is None and self.reachable.is_set():
            self._ground_dirty = set(self._states)
            self._state_wakeup.set()
            self.flowing.set()

    def _ground_down(self, reason: str) -> None:
        self.flowing.clear()
        if self.reachable.is_set():
            self.reachable.clear()
            self.bus.emit(
                "ground.link_down", Severity.WARNING,
                f"ground out of reach ({reason}): queuing onboard",
            )  # fmt: skip

    async def _announce_hold(self, client: aiomqtt.Client) -> None:
        """Announce a hold before the stream stops, and a release as it resumes."""
        hold = self.hold
        if hold is not None:
            if self.reachable.is_set():
                await self._publish_link(client)
            self.bus.emit(
                "ground.stream_held", Severity.WARNING,
                f"stream to the ground held ({hold.reason}) until "
                f"{_hhmm(hold.until)} UTC: queuing onboard",
                reason=hold.reason, until=hold.until,
            )  # fmt: skip
        else:
            self.bus.emit("ground.stream_released", Severity.INFO, "stream to the ground flows")
            if self.reachable.is_set() and not self.flowing.is_set():
                await self._start_flowing(client)

    async def _publish_link(self, client: aiomqtt.Client) -> None:
        """The retained link notice: held (why, until when) or flowing, with the backlog."""
        hold = self.hold
        body = {
            "state": "flowing" if hold is None else "held",
            "reason": "" if hold is None else hold.reason,
            "until": None if hold is None else hold.until,
            "at": self.clock.wall(),
            "backlog": self._backlog(),
            "limits": self._limits(),
        }
        payload = self._envelope(ground.LINK, body)
        self.stream.pacer.charge(len(payload))
        await _publish(client, ground.topic(self.node, ground.LINK), payload, qos=1, retain=True)

    async def _publish_birth(self, client: aiomqtt.Client) -> None:
        payload = self._envelope(ground.BIRTH, self._birth(self.session_started))
        self.stream.pacer.charge(len(payload))
        await _publish(client, ground.topic(self.node, ground.BIRTH), payload, qos=1, retain=True)

    async def _listen(self, client: aiomqtt.Client) -> None:
        bridge = self.config.bridge_state_topic
        async for message in client.messages:
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                continue
            if bridge and message.topic.matches(bridge):
                self._bridge_up = bytes(payload).strip() == b"1"
                if not self._bridge_up:  # the stream stops now, not after a pending birth
                    self._ground_down("the bridge to the ground is down")
                self._ground_changed.set()
                continue
            await self._on_command(bytes(payload))

    async def _publish_states(self, states: LatestStates) -> None:
        """Retained latest state: always for the crew (local/), for the ground while flowing.

        Every dirty state goes out once per interval (1 / state_rate_hz); a device that came
        or went goes out at once as well (`update_state(..., at_once=True)`), without taking
        the others along early. A held stream holds the states too: the ground must not see
        fresh-looking data from a node whose events and alarms it cannot see. Release
        publishes every state again. A state whose previous one is not acknowledged yet
        waits for the next round, and goes out then as it is by then.
        """
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.config.state_rate_hz
        next_round = loop.time()
        # A new session: every state goes to the crew again. One the last session sent may
        # have ended with it unacknowledged (or mid-round), and a broker that restarted may
        # have lost its retained copies; a device gone offline sends no new state to repair it.
        self._dirty.update(self._states)
        self._state_wakeup.set()
        while True:
            if not (self._ground_dirty and self.flowing.is_set()):
                await self._state_wakeup.wait()
            self._state_wakeup.clear()
            self._state_at_once.clear()
            if loop.time() >= next_round:
                due, self._dirty = self._dirty, set()
                next_round = loop.time() + interval
            else:
                due = self._dirty & self._at_once
                self._dirty -= due
            came_or_went, self._at_once = self._at_once & due, self._at_once - due
            self._ground_at_once |= came_or_went  # before any await: a session ending keeps it
            built: dict[str, bytes] = {}
            for index, device in enumerate(sorted(due)):
                if index and index % STATES_PER_TURN == 0:
                    await asyncio.sleep(0)
                built[device] = self._envelope(ground.STATE, self._states[device]())
                topic = ground.topic(self.node, ground.LOCAL_STATE, device)
                if device in came_or_went or states.ready(topic):
                    states.publish(topic, built[device])
                else:
                    self._dirty.add(device)
                    self._state_wakeup.set()  # looked at again next round, not forgotten
            self._ground_dirty |= due
            await self._publish_ground_states(states, built)
            if not (self._at_once or self._ground_at_once):
                self.changes_published.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_round - loop.time())):
                    await self._state_at_once.wait()

    async def _publish_ground_states(self, states: LatestStates, built: dict[str, bytes]) -> None:
        """While the stream flows, each state the housekeeping allocation has room for; the
        rest wait, latest wins. `built`: this round's payloads, published to the crew already
        (built once)."""
        for index, device in enumerate(sorted(self._ground_dirty)):
            if index % STATES_PER_TURN == 0:
                await asyncio.sleep(0)
                if not self.flowing.is_set():
                    return  # held meanwhile: the rest wait for the release
            topic = ground.topic(self.node, ground.STATE, device)
            if device not in self._ground_at_once and not states.ready(topic):
                continue
            payload = built.get(device) or self._envelope(ground.STATE, self._states[device]())
            if not self.stream.pacer.try_spend(len(payload)):
                break
            states.publish(topic, payload)
            self._ground_dirty.discard(device)
            self._ground_at_once.discard(device)

    async def flush(self, timeout_s: float) -> bool:
        """Shutdown: give the backlog up to `timeout_s` to reach the ground; True if it did.
        Nothing is lost either way: what is left stays in the outbox for the next start."""
        if not self.flowing.is_set():
            return False
        return await self.stream.flush(timeout_s)

    async def publish_death(self, reason: str) -> None:
        """Clean shutdown: the session stops its work, says why the node goes (a clean
        disconnect fires no will) and disconnects. Nothing is published after the death and
        the death's PUBACK comes after the broker has answered everything sent before it, so
        no PUBACK is left to fail on a closed socket; mosquitto before 2.0.22 takes such a
        failure for a lost client and publishes the will ("connection lost")."""
        self._goodbye = reason  # a session coming up now says it instead of serving
        if self._client is None:
            return  # no session up: nobody to tell (the will speaks if one was)
        if self._serving is not None:
            self._serving.cancel()
        try:
            async with asyncio.timeout(GOODBYE_TIMEOUT_S):
                await self._said_goodbye.wait()
        except TimeoutError:
            log.warning("the broker session did not end within %g s", GOODBYE_TIMEOUT_S)


async def _publish(
    client: aiomqtt.Client,
    topic: str,
    payload: bytes,
    *,
    qos: int,
    retain: bool = False,
    timeout: float | None = None,
) -> None:
    """aiomqtt's publish, which waits for the PUBACK with Python 3.11's `wait_for`: a cancel
    that comes as the PUBACK does is lost there. A task group's child that lost its cancel
    is never asked again and holds the group (the session, the daemon's stop) forever; the
    cancel is raised again here."""
    await client.publish(topic, payload, qos=qos, retain=retain, timeout=timeout)
    stop_if_cancelled()


def _hhmm(when: float) -> str:
    return time.strftime("%H:%M", time.gmtime(when))
