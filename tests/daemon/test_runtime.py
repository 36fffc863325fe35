"""The daemon owns every task it starts: stopped at the worst moment (a sequence running, a
camera being reconciled, loads being powered up one by one), it leaves no task behind, no
task touches a closed database, and nothing queued for the ground is lost.

In-process: the bench's simulated devices (the real codec over real pseudo-terminals) and the
daemon share one event loop; the broker is unreachable, so everything queues in the outbox.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import msgspec
import pytest

from firmware_host.config import parse_config
from firmware_host.daemon import Daemon
from firmware_host.events import Event
from hil.bench import Bench, BenchSpec, DeviceSpec, check_bench
from hil.broker import Mosquitto
from protocols import ground
from protocols.messages.common import DeviceEvent, EventCode, Severity
from tests.harness import Credentials, daemon_config, until
from tools.ground_client import sign_command

UNREACHABLE_BROKER = "mqtt://127.0.0.1:1"
BACKLOG = 300
SEQUENCE = """
name = "long"
[[step]]
command = "budget.status"
[[step]]
after = 3600
command = "budget.status"
"""


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    """A cold PDU (its channels start off: the daemon powers the loads up) feeding a camera
    and a light."""
    spec = check_bench(
        BenchSpec(
            devices=[
                DeviceSpec("pdu", "pdu", baud=115200, model={"channels_start_on": False}),
                DeviceSpec("cam-a", "camera", baud=115200, pdu_channel=0),
                DeviceSpec("key", "light", baud=115200, pdu_channel=1),
            ]
        )
    )
    running = Bench(spec, tmp_path / "bench")
    await running.start()
    yield running
    await running.stop()


def make_daemon(bench: Bench, state_dir: Path, credentials: Credentials) -> Daemon:
    paths = {line["device"]: line["path"] for line in bench.announce()}
    kinds = {line["device"]: line["kind"] for line in bench.announce()}
    toml = daemon_config(
        paths, kinds, UNREACHABLE_BROKER, state_dir, keyring=credentials.keyring,
        per_device={"cam-a": {"pdu_channel": 0}, "key": {"pdu_channel": 1}},
    )  # fmt: skip
    return Daemon(parse_config(toml))


def queued_ids(state_dir: Path) -> set[int]:
    with sqlite3.connect(state_dir / "outbox.db") as db:
        return {row[0] for row in db.execute("SELECT id FROM outbox")}


def queued_names(state_dir: Path) -> list[str]:
    with sqlite3.connect(state_dir / "outbox.db") as db:
        return [json.loads(row[0])["name"] for row in db.execute("SELECT body FROM outbox")]


def own_tasks() -> set[asyncio.Task[object]]:
    """Every task but the test's own, the simulated devices' and the serial library's own
    close hand-shake (a closed port's connection_lost callback: it touches nothing of ours)."""
    return {
        t
        for t in asyncio.all_tasks()
        if t is not asyncio.current_task()
        and not t.get_name().startswith("sim-")
        and getattr(t.get_coro(), "__qualname__", "") != "SerialTransport._call_connection_lost"
    }


async def test_stopped_mid_sequence_reconciliation_and_power_up_it_leaves_nothing_behind(
    bench: Bench, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    state_dir = tmp_path / "state"
    credentials = Credentials(tmp_path)
    daemon = make_daemon(bench, state_dir, credentials)
    events: list[Event] = []
    daemon.bus.subscribe(events.append)
    before = own_tasks()
    stop = asyncio.Event()
    runner = asyncio.create_task(daemon.run(stop))

    def running(qualname: str) -> bool:
        return any(
            getattr(t.get_coro(), "__qualname__", "") == qualname for t in asyncio.all_tasks()
        )

    # A power-up sequence: the PDU came up cold, the daemon powers the loads one at a time.
    await until(
        lambda: running("PowerManager._power_up"), "the cold PDU's loads are being powered up"
    )
    # A sequence run, waiting for its second step an hour away.
    loaded = await daemon.dispatcher.execute("sequence.load", {"script": SEQUENCE})
    assert loaded.status.value == "ok", loaded
    started = await daemon.dispatcher.execute("sequence.start", {"name": "long"})
    assert started.status.value == "ok", started
    # A reconciliation: the camera says it stopped itself (media full).
    camera = daemon.devices["cam-a"]
    await until(lambda: camera.online, "the camera is adopted")
    daemon.takes.on_camera_event(
        camera, DeviceEvent(EventCode.MEDIA_FULL, Severity.WARNING, 0, "media full")
    )
    assert running("PowerManager._power_up") and running("SequenceRunner._run")
    assert running("TakeController._reconcile_self_stop")

    queued = queued_ids(state_dir)
    stop.set()
    await runner

    assert own_tasks() - before == set(), "a task outlived the daemon"
    for _ in range(20):  # had any task survived, it would run now
        await asyncio.sleep(0)
    assert "closed database" not in caplog.text
    assert queued <= queued_ids(state_dir), "a message queued for the ground was lost"
    restarted = make_daemon(bench, state_dir, credentials)
    try:
        assert restarted.outbox.backlog()["messages"] >= len(queued)
    finally:
        restarted.close()
    assert msgspec.json.encode([e.name for e in events])  # the events stayed well-formed


async def test_at_shutdown_the_backlog_reaches_the_ground_before_the_death(
    tmp_path: Path, broker: Mosquitto
) -> None:
    state_dir = tmp_path / "state"
    credentials = Credentials(tmp_path)
    toml = daemon_config({}, {}, broker.url(), state_dir, keyring=credentials.keyring)
    daemon = Daemon(parse_config(toml))
    arrived: list[str] = []  # event names, then "death", in the order the ground saw them
    async with aiomqtt.Client("127.0.0.1", broker.port) as ground_view:
        await ground_view.subscribe(ground.topic("test-node", "#"), qos=1)
        stop = asyncio.Event()
        runner = asyncio.create_task(daemon.run(stop))
        await until(daemon.ground.flowing.is_set, "the stream to the ground flows")
        for number in range(BACKLOG):
            daemon.bus.emit("test.backlog", Severity.INFO, f"queued just before the stop {number}")
        stop.set()
        await runner
        async with asyncio.timeout(10):
            async for message in ground_view.messages:
                parsed = ground.parse_topic(str(message.topic))
                assert parsed is not None and isinstance(message.payload, bytes)
                if parsed[1] == ground.DEATH:
                    arrived.append("death")
                    break
                if parsed[1] == ground.EVENT:
                    arrived.append(json.loads(message.payload)["body"]["name"])
    assert arrived.count("test.backlog") == BACKLOG, "the backlog did not reach the ground"
    assert arrived[-1] == "death"
    # Delivered, so gone from the outbox; only what the link said as it closed stays queued.
    assert queued_names(state_dir) == ["ground.link_down"]


async def test_shutdown_takes_no_command_stops_tasks_flushes_says_goodbye_then_closes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = Credentials(tmp_path)
    toml = daemon_config(
        {}, {}, UNREACHABLE_BROKER, tmp_path / "state", keyring=credentials.keyring
    )
    daemon = Daemon(parse_config(toml))
    steps: list[str] = []
    at_flush: dict[str, object] = {}
    close = daemon.close

    async def flush(timeout_s: float) -> bool:
        command = sign_command(credentials.flight, "health", {})
        await daemon.ground._on_command(json.dumps(command).encode())  # one arrives right now
        at_flush["waiting"] = daemon.intake.waiting
        at_flush["tasks"] = sorted(daemon.supervisor.tasks)
        steps.append("flush")
        return True

    async def publish_death(reason: str) -> None:
        at_flush["link running"] = not daemon.supervisor.tasks["ground-link"].task.done()  # type: ignore[union-attr]
        steps.append("death")

    def closing() -> None:
        steps.append("close")
        close()

    monkeypatch.setattr(daemon.ground, "flush", flush)
    monkeypatch.setattr(daemon.ground, "publish_death", publish_death)
    monkeypatch.setattr(daemon, "close", closing)
    stop = asyncio.Event()
    runner = asyncio.create_task(daemon.run(stop))
    await until(lambda: bool(daemon.supervisor.tasks), "the tasks are added")
    await daemon.supervisor.all_started()
    stop.set()
    await runner
    assert steps == ["flush", "death", "close"]
    assert at_flush == {"waiting": 0, "tasks": ["ground-link"], "link running": True}
