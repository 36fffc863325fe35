"""Real gear's agent, when its line fails while it polls: the device goes offline and the agent
goes back to connecting, as a native device's does; its task never ends as a crash.

The gear agent polls inside a task group (a DMX light's fades run beside its polls), and a task
group hands on whatever ends its body wrapped in a group: a meter that stopped answering came
out of the agent as a crash of the daemon's ("task device:meter crashed", a critical alarm,
restarted by the supervisor) instead of "meter offline: ..."."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from firmware_host.config import DeviceConfig, DeviceKind
from firmware_host.events import Event, EventBus
from firmware_host.gear.capabilities import Protocol
from firmware_host.gear.factory import AgentFactory
from firmware_host.workflow.timecode import ReferenceClock
from hil.bench import DeviceSpec
from protocols.timecode import FrameRate
from tests.harness import until
from tests.hil.host import bench


@pytest.mark.parametrize(
    ("kind", "protocol", "baud"),
    [
        ("pdu", "modbus-rtu", 9600),  # the meter's reads fail: a LinkError
        ("camera", "sony9pin", 38400),  # the deck's polls time out until it is silent too long
    ],
)
async def test_gear_whose_line_fails_goes_offline_and_its_agent_keeps_running(
    tmp_path: Path, kind: DeviceKind, protocol: Protocol, baud: int
) -> None:
    async with bench(tmp_path, DeviceSpec(name="dut", kind=kind, protocol=protocol)) as b:
        config = DeviceConfig(
            name="dut", kind=kind, port=str(b.devices["dut"].path), baud=baud, poll_hz=20,
            timeout_ms=100, retries=0, offline_after_s=0.5, protocol=protocol,
        )  # fmt: skip
        bus = EventBus()
        events: list[Event] = []
        bus.subscribe(events.append)
        agent = AgentFactory().make(
            config, bus, ReferenceClock(FrameRate.FPS_25), lambda _: None, reconnect_max_s=0.2
        )
        runner = asyncio.create_task(agent.run())
        try:
            await until(lambda: agent.online, "the device online")
            b.apply_fault("dut", "stuck")  # it hears, and answers nothing
            await until(lambda: not agent.online or runner.done(), "the device offline")
            assert not runner.done(), runner.exception()
            (offline,) = [e for e in events if e.name == "device.offline"]
            assert offline.source == "dut" and "dut offline:" in offline.message
            b.apply_fault("dut", "stuck", False)
            await until(lambda: agent.online, "the device back online")
        finally:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
