"""Hostile input fault campaign (`make soak`): the running daemon, through a real mosquitto.

Real processes: the simulator, the daemon and mosquitto; the ground publishes over MQTT.
Each campaign prints one line with its figure and verdict (tests/soak.py), then asserts it:
  - hostile payloads: hypothesis draws batches of hostile messages (size, nesting depth,
    types, numbers; unauthenticated bytes and fields, forgeries, and commands signed by a
    monitor-role key and by a second flight controller's key with hostile arguments and
    fields). After each batch every message must be accounted for (one answer or one
    counted refusal), a genuine `health` from the flight controller must be answered, no
    task may have restarted, everything the node published must be strict JSON and the
    daemon's log must hold no traceback (bad input is one clear line, never a stack). The
    verdict: those hold throughout and the genuine probes' p99 is within PROBE_P99_S.
  - forged flood: 10,000 forged commands, then a flight controller's cap cut, all through
    mosquitto; the figure is the cut's time from publish to its result at the ground, the
    verdict that it is within URGENT_WITHIN_S every round.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from firmware_host.groundlink.screen import MAX_DEPTH, MAX_PAYLOAD_BYTES
from hil.broker import Mosquitto
from protocols import ground
from protocols.ground import INT64_MAX, KeyFile, Role
from tests.daemon.conftest import Shoot, shoot
from tests.groundlink.flood import flood_from_process
from tests.harness import CAMERA_AND_LIGHT_UNPACED
from tests.soak import report, verdict
from tools.broker_link import BrokerLink
from tools.ground_client import sign_command
from tools.keys import add_to_keyring, create_key

pytestmark = pytest.mark.soak

BENCH = CAMERA_AND_LIGHT_UNPACED
NODE = "test-node"
SUMMARY_OFTEN = {"refusal_summary_s": 0.2}  # refusals are counted back to the ground quickly
BATCHES = 120
PROBE_P99_S = 1.0
ACCOUNTED_WITHIN_S = 15.0
FLOOD = 10_000
FLOOD_ROUNDS = 3
URGENT_WITHIN_S = 1.0
# Everything the node publishes (the command topic is the ground's, full of our own bytes).
NODE_TOPICS = [
    ground.topic(NODE, leaf)
    for leaf in (ground.BIRTH, ground.DEATH, ground.EVENT, ground.TELEMETRY, ground.RESULT)
] + [ground.topic(NODE, ground.STATE, "#"), ground.topic(NODE, "local", "#")]


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class NodeWatch:
    """Everything the node publishes, held to strict JSON; when each result arrived."""

    def __init__(self, url: str) -> None:
        self.link = BrokerLink(url, NODE_TOPICS, self._receive)
        self.messages = 0
        self.not_json: list[tuple[str, bytes]] = []
        self.result_at: dict[str, float] = {}

    async def _receive(self, topic: str, payload: bytes) -> None:
        arrived = time.monotonic()
        self.messages += 1
        try:
            envelope = json.loads(payload.decode("utf-8"), parse_constant=_no_constants)
        except ValueError:
            self.not_json.append((topic, payload[:200]))
            return
        body = envelope.get("body") if isinstance(envelope, dict) else None
        if topic.endswith(f"/{ground.RESULT}") and isinstance(body, dict) and "id" in body:
            self.result_at.setdefault(str(body["id"]), arrived)


async def watching(url: str) -> tuple[NodeWatch, asyncio.Task[None]]:
    watch = NodeWatch(url)
    runner = asyncio.create_task(watch.link.run())
    await asyncio.wait_for(watch.link.connected.wait(), 10)
    return watch, runner


def refused_total(s: Shoot) -> int:
    """Unauthenticated messages the node says it refused (its summaries, summed)."""
    return sum(int(e["data"]["count"]) for e in s.events("command.refused"))


def restarts(health: dict[str, Any]) -> int:
    return sum(int(task["restarts"]) for task in health["tasks"].values())


async def second_flight_key(s: Shoot) -> KeyFile:
    """Another flight controller's key, read by the daemon on SIGHUP: the hostile one, so
    whatever it does to its own replay counter never touches the genuine probes' key."""
    key = create_key(Role.FLIGHT_CONTROLLER, "flight_controller-2")
    add_to_keyring(s.credentials.keyring, key)
    since = time.time()
    assert s.daemon.process is not None
    os.kill(s.daemon.process.pid, signal.SIGHUP)
    await s.wait_event("keys.reloaded", since=since - 1)
    return key


# -- hostile material --------------------------------------------------------------------

TEXT = st.sampled_from(
    ["cam-a", "key", "", "x" * 2000, "\x00", "NaN", "Infinity", "../../state/budget.db",
     "💥" * 40, "flight_controller-1", "a" * 65]
) | st.text(max_size=24)  # fmt: skip
NUMBERS = st.sampled_from(
    [0, -1, 2**31, 2**53 + 1, INT64_MAX, INT64_MAX + 1, -INT64_MAX - 2, 2**64 - 1, 2**64,
     10**30, 1e308, -1e308, 5e-324, -0.0, 1e-300]
) | st.integers() | st.floats(allow_nan=False, allow_infinity=False)  # fmt: skip
SCALARS = st.none() | st.booleans() | NUMBERS | TEXT
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
FIELD_NAMES = ["v", "id", "name", "args", "role", "key_id", "counter", "issued_at_ms",
               "expires_at_ms", "sig", "x"]  # fmt: skip


FIELDS = st.dictionaries(st.sampled_from(FIELD_NAMES[:-1]), VALUES, min_size=1, max_size=2)


def _nested(depth: int, curly: bool) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth if curly else b"[" * depth + b"]" * depth


def _oversized(size: int) -> bytes:
    return b'{"key_id":"flight_controller-1","x":"' + b"a" * size + b'"}'


RAW_NUMBERS = st.sampled_from(
    [
        b'{"key_id":"monitor-1","counter":1e400}',
        b'{"key_id":"monitor-1","counter":NaN}',
        b'{"key_id":"monitor-1","v":-Infinity}',
        b'{"key_id":1e999}',
        b'{"key_id":"\\ud800"}',
        b'{"key_id":"monitor-1","args":{"a":"\\udfff"}}',
    ]
) | st.integers(20, 100_000).map(lambda n: b'{"key_id":"monitor-1","counter":1' + b"0" * n + b"}")

UNAUTHENTICATED = st.one_of(
    st.tuples(st.integers(MAX_DEPTH + 1, 300_000), st.booleans()).map(lambda d: _nested(*d)),
    st.tuples(st.integers(1, MAX_DEPTH), st.booleans()).map(lambda d: _nested(*d)),
    st.integers(MAX_PAYLOAD_BYTES - 64, 1_000_000).map(_oversized),
    st.binary(max_size=300),
    RAW_NUMBERS,
    st.dictionaries(st.sampled_from(FIELD_NAMES), VALUES).map(lambda f: json.dumps(f).encode()),
)


@dataclass(frozen=True)
class Signed:
    """A command signed by a real key, with hostile arguments and perhaps hostile fields."""

    key: str  # "monitor", "flight" or "forged" (the flight key's id, a wrong secret)
    name: str
    args: dict[str, Any]
    fields: dict[str, Any]


def signed(commands: dict[str, list[str]]) -> st.SearchStrategy[Signed]:
    names = sorted(commands)

    def for_name(name: str) -> st.SearchStrategy[Signed]:
        arg_names = st.sampled_from(commands.get(name) or ["x"]) | TEXT
        return st.builds(
            Signed,
            st.sampled_from(["monitor", "flight", "flight", "forged"]),
            st.just(name),
            st.dictionaries(arg_names, VALUES, max_size=5),
            # mostly well-formed, so most reach the checks and the commands themselves
            st.one_of(st.just({}), st.just({}), st.just({}), FIELDS),
        )

    return st.sampled_from([*names, "nope", ""]).flatmap(for_name)


@dataclass
class Campaign:
    s: Shoot
    watch: NodeWatch
    keys: dict[str, KeyFile]
    sent: int = 0
    probes: list[float] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def build(self, item: bytes | Signed) -> tuple[bytes, str | None]:
        """The bytes to publish, and the id an answer would carry (None: never answered)."""
        if isinstance(item, bytes):
            return item, None
        key = self.keys[item.key]
        command = sign_command(key, item.name, item.args)
        fields = {**command, **item.fields}
        if isinstance(fields.get("counter"), int) and fields["counter"] > command["counter"]:
            fields["counter"] = -fields["counter"]  # never burn the key's replay counter
        fields["sig"] = ground.signature(key.secret_bytes(), fields)
        if "sig" in item.fields:
            fields["sig"] = item.fields["sig"]
        answer_id = fields["id"] if isinstance(fields.get("id"), str) else None
        return json.dumps(fields).encode(), answer_id

    async def batch(self, items: list[bytes | Signed]) -> None:
        """Publish the batch, probe, and hold the node to every promise (assertions)."""
        s = self.s
        refused_before = refused_total(s)
        built = [self.build(item) for item in items]
        for payload, _ in built:
            await s.ground.publish_raw(payload)
        self.sent += len(built)
        started = time.monotonic()
        health = await s.ok("health")
        self.probes.append(time.monotonic() - started)
        ids = [answer_id for _, answer_id in built if answer_id is not None]

        def accounted() -> int:
            answered = sum(1 for i in set(ids) if i in s.ground.results)
            return answered + refused_total(s) - refused_before

        await s.ground.wait_for(
            lambda: accounted() >= len(built), ACCOUNTED_WITHIN_S,
            f"an answer or a counted refusal for each of {len(built)} messages",
        )  # fmt: skip
        assert accounted() == len(built), "a message was both answered and refused"
        for i in ids:
            reason = str(s.ground.results.get(i, {}).get("reason", ""))
            if "unexpectedly" in reason or "could not be handled" in reason:
                self.unexpected.append(reason[:200])
        assert restarts(health) == 0, health["tasks"]
        assert s.events("task.restarted") == []
        assert self.watch.not_json == [], self.watch.not_json[:3]
        assert s.daemon.alive
        log = s.daemon.log.read_text(errors="replace")
        assert "Traceback" not in log, log[log.index("Traceback") - 300 :][:3000]


@pytest.mark.timeout(1200)
async def test_hostile_payloads_against_the_running_daemon(
    tmp_path: Path, broker: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    async with shoot(tmp_path, broker, BENCH, auth_options=SUMMARY_OFTEN, processes=True) as s:
        watch, runner = await watching(broker.url())
        keys = {
            "monitor": s.credentials.keys[Role.MONITOR],
            "flight": await second_flight_key(s),
            "forged": KeyFile("flight_controller-1", Role.FLIGHT_CONTROLLER, "QUJD" * 11),
        }
        signatures = s.ground.births[-1].body["commands"]
        commands = {name: sorted(sig["args"]) for name, sig in signatures.items()}
        campaign = Campaign(s, watch, keys)
        loop = asyncio.get_running_loop()

        authenticated = signed(commands)  # half of each batch (`|` would make it one of 7)
        hostile = st.booleans().flatmap(lambda sign: authenticated if sign else UNAUTHENTICATED)

        @settings(
            max_examples=BATCHES,
            phases=[Phase.explicit, Phase.reuse, Phase.generate],  # a live daemon: no shrinking
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                   HealthCheck.large_base_example],
        )  # fmt: skip
        @given(st.lists(hostile, min_size=10, max_size=60))
        def hostile_batches(items: list[bytes | Signed]) -> None:
            asyncio.run_coroutine_threadsafe(campaign.batch(items), loop).result(120)

        failure = ""
        try:
            await asyncio.to_thread(hostile_batches)
        except BaseException as exc:
            failure = f" ({type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]})"
            raise
        finally:
            runner.cancel()
            probes = sorted(campaign.probes) or [float("inf")]
            p99 = statistics.quantiles(probes, n=100)[98] if len(probes) > 1 else probes[0]
            passed = not failure and p99 <= PROBE_P99_S and not campaign.unexpected
            tracebacks = s.daemon.log.read_text(errors="replace").count("Traceback")
            report(
                capsys,
                f"intake/hostile payloads: {campaign.sent} messages in {len(campaign.probes)} "
                f"batches: {campaign.sent - refused_total(s)} answered, {refused_total(s)} "
                f"refused unanswered; genuine probes p50 "
                f"{statistics.median(probes) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max "
                f"{probes[-1] * 1000:.0f} ms; {watch.messages} node messages, "
                f"{len(watch.not_json)} not JSON; {tracebacks} tracebacks; unexpected failures "
                f"{len(campaign.unexpected)}{failure}: {verdict(passed)}",
            )
    assert p99 <= PROBE_P99_S, campaign.probes
    assert campaign.unexpected == []


async def flood_then_cut(s: Shoot, forged: list[bytes], cap_w: float) -> dict[str, Any]:
    """The flood and the cut from their own process (tests/groundlink/flood.py); the cut goes
    the way `cupola cmd` sends a flight controller's command: on the priority topic."""
    args = {"cap_w": cap_w, "reason": "station power-down"}
    return await flood_from_process(
        s.workdir,
        s.broker.url(),
        NODE,
        forged,
        s.credentials.flight,
        name="power.cap.set",
        args=args,
    )


def read_span(s: Shoot, since: float) -> float:
    """From the first refusal summary after `since` to the last: the node's time to read
    (an upper bound: the last summary may wait up to a second for the worker's idle beat)."""
    stamps = [e["ts"] for e in s.events("command.refused", since=since)]
    return max(stamps) - min(stamps) if stamps else 0.0


@pytest.mark.timeout(600)
async def test_a_cap_cut_is_answered_within_a_second_of_a_forged_flood(
    tmp_path: Path, broker: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    async with shoot(tmp_path, broker, BENCH, auth_options=SUMMARY_OFTEN, processes=True) as s:
        watch, runner = await watching(broker.url())
        fc = s.credentials.flight
        rounds: list[dict[str, Any]] = []
        for round_ in range(FLOOD_ROUNDS):
            template = sign_command(fc, "light.set", {"device": "key", "intensity_pct": 99})
            forged = [json.dumps({**template, "id": f"forged-{round_}-{n:06d}",
                                  "counter": template["counter"] + n}).encode()
                      for n in range(FLOOD)]  # fmt: skip
            since = time.time()
            cap_w = 290.0 - 10 * round_  # lowering: not hazardous, runs at once
            outcome = await flood_then_cut(s, forged, cap_w)
            assert outcome["result"]["status"] == "ok", outcome
            await s.ground.wait_for(
                lambda r=round_: refused_total(s) >= FLOOD * (r + 1), 60, "every forgery counted"
            )
            rounds.append({**outcome, "read_s": read_span(s, since)})
        budget = await s.ok("budget.status")
        health = await s.ok("health")
        runner.cancel()
    answers = [r["answer_s"] for r in rounds]
    worst = max(answers)
    passed = worst <= URGENT_WITHIN_S and restarts(health) == 0 and not watch.not_json
    seconds = lambda key: ", ".join(f"{r[key]:.2f}" for r in rounds)  # noqa: E731
    report(
        capsys,
        f"intake/forged flood: {FLOOD_ROUNDS} x {FLOOD} forged commands through mosquitto "
        f"(published in {seconds('flood_s')} s; the node read them within {seconds('read_s')} s), "
        f"{refused_total(s)} refused unanswered; the cap cut published right behind each "
        f"answered {seconds('answer_s')} s after publish (worst {worst:.2f} s, limit "
        f"{URGENT_WITHIN_S:g} s); cap now {budget['power']['cap_w']:g} W; task restarts "
        f"{restarts(health)}; not JSON {len(watch.not_json)}: {verdict(passed)}",
    )
    assert worst <= URGENT_WITHIN_S, rounds
    assert restarts(health) == 0 and not watch.not_json
    assert refused_total(s) == FLOOD * FLOOD_ROUNDS
