"""Births, link notices and the start of the flow come from one task, one at a time: a hold
or a bridge change during a birth is acted on after it, never beside it.

Against a real mosquitto, with the daemon's own publishes wrapped to change the hold at the
worst moment: while a birth or a link notice awaits its PUBACK."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt

from firmware_host.budget.downlink import Hold
from firmware_host.config import parse_config
from firmware_host.daemon import Daemon
from firmware_host.events import Event
from hil.broker import Mosquitto
from tests.harness import Credentials, daemon_config, until

Publish = Callable[[aiomqtt.Client], Coroutine[Any, Any, None]]


def _daemon(tmp_path: Path, broker: Mosquitto) -> tuple[Daemon, list[str]]:
    toml = daemon_config(
        {}, {}, broker.url(), tmp_path / "state", keyring=Credentials(tmp_path).keyring
    )
    daemon = Daemon(parse_config(toml))
    daemon.data.on_hold = lambda _: None  # the test moves the hold, not the data budget
    names: list[str] = []

    def note(event: Event) -> None:
        names.append(event.name)

    daemon.bus.subscribe(note)
    return daemon, names


@asynccontextmanager
async def running(daemon: Daemon) -> AsyncIterator[None]:
    stop = asyncio.Event()
    runner = asyncio.create_task(daemon.run(stop))
    try:
        yield
    finally:
        stop.set()
        await runner


async def test_a_hold_that_came_and_went_before_the_session_gives_one_birth(
    tmp_path: Path, broker: Mosquitto
) -> None:
    daemon, names = _daemon(tmp_path, broker)
    link = daemon.ground
    starts: list[float] = []
    start_flowing = link._start_flowing

    async def counted(client: aiomqtt.Client) -> None:
        starts.append(time.time())
        await start_flowing(client)

    link._start_flowing = counted  # type: ignore[method-assign]
    link.set_hold(Hold("contact", 0.0))  # LOS while the session was down
    link.set_hold(None)
    # the release is announced after the first start; a second start would follow it at once
    async with running(daemon):
        await until(lambda: "ground.stream_released" in names, "the release announced")
        assert len(starts) == 1 and link.flowing.is_set()


async def test_a_hold_set_while_the_birth_awaits_its_puback_keeps_the_stream_stopped(
    tmp_path: Path, broker: Mosquitto
) -> None:
    daemon, names = _daemon(tmp_path, broker)
    link = daemon.ground
    publish_birth: Publish = link._publish_birth

    async def held_meanwhile(client: aiomqtt.Client) -> None:
        await publish_birth(client)
        link.set_hold(Hold("budget", time.time() + 60))  # the budget ran out meanwhile

    link._publish_birth = held_meanwhile  # type: ignore[method-assign]
    async with running(daemon):
        await until(lambda: "ground.stream_held" in names, "the hold announced")
        assert not link.flowing.is_set(), "the stream flows while held"


async def test_a_release_while_the_held_notice_awaits_its_puback_starts_the_flow(
    tmp_path: Path, broker: Mosquitto
) -> None:
    daemon, names = _daemon(tmp_path, broker)
    link = daemon.ground
    link.set_hold(Hold("contact", time.time() + 60))
    publish_link: Publish = link._publish_link

    async def released_meanwhile(client: aiomqtt.Client) -> None:
        held = link.hold is not None
        await publish_link(client)
        if held:
            link.set_hold(None)  # the contact window opens meanwhile

    link._publish_link = released_meanwhile  # type: ignore[method-assign]
    async with running(daemon):
        await until(link.flowing.is_set, "the stream flows")
        assert link.connects == 1 and "ground.stream_released" in names
        assert daemon.supervisor.tasks["ground-link"].restarts == 0
