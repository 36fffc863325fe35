"""The broker session under the supervisor: a stop always stops it, a crash is always restarted.

Python 3.11's TaskGroup cancels the task it runs in when a child fails while it waits for
them, and never takes that cancel back; it also turns a stop that meets a failing child into
that child's error. The session loop catches the broker's errors and connects again, so
either one could make a crash look like a stop, or a stop look like a dropped link."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from firmware_host.config import parse_config
from firmware_host.daemon import Daemon
from hil.broker import Mosquitto
from protocols import ground
from tests.harness import Credentials, daemon_config, until


@asynccontextmanager
async def running(daemon: Daemon) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    runner = asyncio.create_task(daemon.run(stop))
    try:
        yield runner
    finally:
        stop.set()
        await asyncio.wait({runner}, timeout=20)
        assert runner.done(), "the daemon did not stop: its broker session swallowed the stop"
        await runner


def _daemon(tmp_path: Path, url: str) -> Daemon:
    toml = daemon_config({}, {}, url, tmp_path / "state", keyring=Credentials(tmp_path).keyring)
    return Daemon(parse_config(toml))


async def test_a_cancel_that_meets_a_failing_session_still_ends_the_ground_link(
    tmp_path: Path, broker: Mosquitto
) -> None:
    """The ground link cancelled outright (no goodbye), as its session fails meanwhile."""
    daemon = _daemon(tmp_path, broker.url())
    serve = daemon.ground._serve

    async def fails_as_it_stops(client: aiomqtt.Client) -> None:
        try:
            await serve(client)
        except asyncio.CancelledError:  # as a TaskGroup does when a child fails meanwhile
            raise ExceptionGroup("session", [aiomqtt.MqttError("link dropped")]) from None

    daemon.ground._serve = fails_as_it_stops  # type: ignore[method-assign]
    link = asyncio.create_task(daemon.ground.run())
    try:
        await until(daemon.ground.flowing.is_set, "the stream flows")
        link.cancel()
        await asyncio.wait({link}, timeout=10)
        assert link.done(), "the ground link took its cancel for a dropped session"
        assert link.cancelled()
    finally:
        daemon.close()


async def test_a_stop_as_a_session_comes_up_is_a_clean_goodbye(
    tmp_path: Path, broker: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stop comes while the session subscribes (the connection is up, its work is not
    started): no birth, and the death says why the node went."""
    daemon = _daemon(tmp_path, broker.url())
    subscribing = asyncio.Event()
    subscribe = aiomqtt.Client.subscribe
    commands = ground.topic("test-node", ground.COMMAND)

    async def until_the_stop(self: aiomqtt.Client, topic: str, *args: Any, **kw: Any) -> Any:
        if topic == commands:  # the session's, not the priority link's or the test's
            subscribing.set()
            await until(lambda: daemon.ground._goodbye is not None, "the stop asked for")
        return await subscribe(self, topic, *args, **kw)

    monkeypatch.setattr(aiomqtt.Client, "subscribe", until_the_stop)
    async with running(daemon):
        await subscribing.wait()
        daemon.stop_reason = "the test stops it"
    assert daemon.ground.connects <= 1 and not daemon.ground.flowing.is_set()
    assert (await _death(broker))["reason"] == "the test stops it"


async def test_a_crash_after_a_dropped_session_is_restarted_not_taken_for_a_stop(
    tmp_path: Path, broker: Mosquitto
) -> None:
    daemon = _daemon(tmp_path, broker.url())
    async with running(daemon):
        await until(daemon.ground.flowing.is_set, "the stream flows")
        broker.restart()  # the session's task group ends on its listener's MqttError
        await until(lambda: daemon.ground.connects >= 2, "the session is back")
        await until(daemon.ground.flowing.is_set, "the stream flows again")
        record = daemon.supervisor.tasks["ground-link"]
        assert record.task is not None
        assert record.task.cancelling() == 0, "a dropped session left a cancel behind"
        crashing = daemon.ground._tell_the_ground

        async def crashes(client: aiomqtt.Client) -> None:
            daemon.ground._tell_the_ground = crashing  # type: ignore[method-assign]
            raise RuntimeError("a bug in the ground link")

        daemon.ground._tell_the_ground = crashes  # type: ignore[method-assign]
        broker.restart()
        await until(lambda: record.restarts >= 1, "the supervisor restarts the ground link")
        await until(daemon.ground.flowing.is_set, "the stream flows after the restart")


async def test_a_stop_whose_cancel_a_publish_swallowed_still_ends_with_a_clean_goodbye(
    tmp_path: Path, broker: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiomqtt waits for a PUBACK with 3.11's `wait_for`, which returns the PUBACK and drops a
    cancel that comes with it. The birth's publish does so here, as the node stops."""
    daemon = _daemon(tmp_path, broker.url())
    birth_pending = asyncio.Event()
    publish = aiomqtt.Client.publish

    async def swallows_a_cancel(self: aiomqtt.Client, topic: str, *args: Any, **kw: Any) -> None:
        if topic.endswith("/" + ground.BIRTH):
            birth_pending.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()  # the PUBACK comes with the cancel
        await publish(self, topic, *args, **kw)

    monkeypatch.setattr(aiomqtt.Client, "publish", swallows_a_cancel)
    async with running(daemon):
        await birth_pending.wait()
        daemon.stop_reason = "the test stops it"
    assert (await _death(broker))["reason"] == "the test stops it", "the will spoke"


async def _death(broker: Mosquitto) -> dict[str, Any]:
    """The retained death certificate."""
    async with aiomqtt.Client("127.0.0.1", broker.port) as reader:
        await reader.subscribe(ground.topic("test-node", ground.DEATH), qos=1)
        async for message in reader.messages:
            return ground.decode(bytes(message.payload)).body  # type: ignore[arg-type]
    raise AssertionError("no death certificate")
