"""At start the backlog waits for the devices' first try: a full outbox drained while 64
devices came online took the CPU they needed (online in 0.96-1.18 s instead of 0.35-0.54 s)
and put their states behind it on the socket. Both sides: the stream opens once every device
has tried, not before; and opens after DEVICES_FIRST_S whatever a device does."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from types import SimpleNamespace

import msgspec

from firmware_host.config import DeviceConfig, parse_config
from firmware_host.daemon import DEVICES_FIRST_S, Daemon
from firmware_host.devices.agent import DeviceAgent
from firmware_host.events import EventBus
from firmware_host.workflow.timecode import ReferenceClock
from protocols.messages.common import DeviceClass, Hello
from protocols.timecode import FrameRate
from tests.harness import Credentials
from tests.virtual_time import run_virtual


class _Stream:
    def __init__(self) -> None:
        self.opened_at: float | None = None

    def open(self) -> None:
        self.opened_at = asyncio.get_running_loop().time()


async def _opened_at(
    tries: dict[str, float | None], states_out: float | None = 0.0
) -> float | None:
    """When the stream opened, the devices having their first try at the given instants (None:
    never), the states of those that came online handed to paho at `states_out` (None:
    never)."""
    devices = {name: SimpleNamespace(tried=asyncio.Event()) for name in tries}
    loop = asyncio.get_running_loop()
    for name, at in tries.items():
        if at is not None:
            loop.call_at(loop.time() + at, devices[name].tried.set)
    ground = SimpleNamespace(changes_published=asyncio.Event())
    if states_out is not None:
        loop.call_at(loop.time() + states_out, ground.changes_published.set)
    stream = _Stream()
    gate = SimpleNamespace(devices=devices, stream=stream, ground=ground)
    await Daemon._open_the_stream(gate)  # type: ignore[arg-type]
    return stream.opened_at


def test_the_stream_opens_when_the_last_device_has_tried_and_not_before() -> None:
    assert run_virtual(_opened_at({"a": 0.1, "b": 0.7, "c": 0.3})) == 0.7


def test_a_device_that_never_tries_holds_the_stream_no_longer_than_its_bound() -> None:
    assert run_virtual(_opened_at({"a": 0.1, "silent": None})) == DEVICES_FIRST_S


def test_the_stream_opens_only_once_the_states_of_the_devices_that_came_are_out() -> None:
    """Opened as the last device came online, the backlog's first batch went to the socket
    ahead of that device's state: the ground saw it 50-100 ms late (bench.startup)."""
    assert run_virtual(_opened_at({"a": 0.1, "b": 0.7}, states_out=0.75)) == 0.75


def test_states_never_out_hold_the_stream_no_longer_than_its_bound() -> None:
    assert run_virtual(_opened_at({"a": 0.1}, states_out=None)) == DEVICES_FIRST_S


def _camera() -> DeviceAgent:
    config = msgspec.convert(
        {"name": "cam", "kind": "camera", "port": "/dev/cupola-no-such-port"}, DeviceConfig
    )
    return DeviceAgent(
        config, EventBus(), ReferenceClock(FrameRate.FPS_25, wall=lambda: 0.0), lambda _: None
    )


async def _tried_after_its_first_attempt(agent: DeviceAgent) -> bool:
    running = asyncio.create_task(agent.run())
    try:
        async with asyncio.timeout(5):
            await agent.tried.wait()
    finally:
        running.cancel()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await running
    return agent.online


def test_a_device_whose_port_is_missing_has_tried_once_its_first_connect_failed() -> None:
    # real time: the port is opened in a thread, which virtual time would jump past
    assert asyncio.run(_tried_after_its_first_attempt(_camera())) is False


def test_a_device_whose_first_attempt_crashes_has_tried_too() -> None:
    agent = _camera()

    async def crash() -> None:
        raise RuntimeError("a fault no one foresaw")

    agent._connect = crash  # type: ignore[method-assign]
    assert asyncio.run(_tried_after_its_first_attempt(agent)) is False


def test_a_device_that_comes_online_has_tried() -> None:
    agent = _camera()
    agent.identity = Hello(
        proto=1, device_class=DeviceClass.CAMERA, model="SimCam", serial="1", firmware="1",
        boot_id=1, heartbeat_ms=1000,
    )  # fmt: skip
    agent._set_online()
    assert agent.tried.is_set() and agent.online


def test_the_daemon_builds_its_stream_shut_and_its_devices_open_it(tmp_path: Path) -> None:
    keys = Credentials(tmp_path)
    config = parse_config(
        f'[node]\nstate_dir = "{tmp_path}"\n[mqtt]\nurl = "mqtt://127.0.0.1:1"\n'
        f'[auth]\nkeyring = "{keys.keyring}"\n'
        '[[device]]\nname = "cam"\nkind = "camera"\nport = "/dev/cupola-no-such-port"\n'
    )
    daemon = Daemon(config)
    try:
        assert daemon.stream.opened is False
        daemon.devices["cam"].tried.set()
        asyncio.run(daemon._open_the_stream())
        assert daemon.stream.opened is True
    finally:
        daemon.close()
