"""At start the backlog waits for the devices' first try: a full outbox drained while 64
devices came online took the CPU they needed (online in 1.35 s instead of 0.35 s) and put their
states behind it on the socket. Both sides: the stream opens once every device has tried, not
before; and opens after DEVICES_FIRST_S whatever a device does."""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace

import msgspec

from firmware_host.config import DeviceConfig
from firmware_host.daemon import DEVICES_FIRST_S, Daemon
from firmware_host.devices.agent import DeviceAgent
from firmware_host.events import EventBus
from firmware_host.workflow.timecode import ReferenceClock
from protocols.timecode import FrameRate
from tests.virtual_time import run_virtual


class _Stream:
    def __init__(self) -> None:
        self.opened_at: float | None = None

    def open(self) -> None:
        self.opened_at = asyncio.get_running_loop().time()


async def _opened_at(tries: dict[str, float | None]) -> float | None:
    """When the stream opened, the devices having their first try at the given instants (None:
    never)."""
    devices = {name: SimpleNamespace(tried=asyncio.Event()) for name in tries}
    loop = asyncio.get_running_loop()
    for name, at in tries.items():
        if at is not None:
            loop.call_at(loop.time() + at, devices[name].tried.set)
    node = SimpleNamespace(devices=devices, stream=_Stream())
    await Daemon._open_the_stream(node)  # type: ignore[arg-type]
    return node.stream.opened_at


def test_the_stream_opens_when_the_last_device_has_tried_and_not_before() -> None:
    assert run_virtual(_opened_at({"a": 0.1, "b": 0.7, "c": 0.3})) == 0.7


def test_a_device_that_never_tries_holds_the_stream_no_longer_than_its_bound() -> None:
    assert run_virtual(_opened_at({"a": 0.1, "silent": None})) == DEVICES_FIRST_S


async def _tried_after_a_failed_connect() -> bool:
    config = msgspec.convert(
        {"name": "cam", "kind": "camera", "port": "/dev/cupola-no-such-port"}, DeviceConfig
    )
    agent = DeviceAgent(
        config, EventBus(), ReferenceClock(FrameRate.FPS_25, wall=lambda: 0.0), lambda _: None
    )
    running = asyncio.create_task(agent.run())
    try:
        async with asyncio.timeout(5):
            await agent.tried.wait()
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    return agent.online


def test_a_device_whose_port_is_missing_has_tried_once_its_first_connect_failed() -> None:
    # real time: the port is opened in a thread, which virtual time would jump past
    assert asyncio.run(_tried_after_a_failed_connect()) is False
