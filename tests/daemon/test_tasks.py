"""Work started on demand belongs to its component's run: refused while it is not running,
ended when it ends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from firmware_host.commands.dispatcher import CommandRejected, CommandSpec, Dispatcher
from firmware_host.events import EventBus
from firmware_host.tasks import NotRunning, TaskOwner, stop_if_cancelled
from firmware_host.workflow.sequencer import LoadArgs, NameArgs, NoArgs, SequenceRunner
from tests.virtual_time import run_virtual


def test_work_is_refused_unless_its_owner_runs_and_ends_with_it() -> None:
    owner = TaskOwner("power")
    ended: list[str] = []

    async def work() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            ended.append("work")

    async def main() -> None:
        idle = work()
        with pytest.raises(NotRunning, match="power is not running"):
            owner.start(idle, name="early")
        component = asyncio.create_task(owner.serve())
        await asyncio.sleep(0)
        task = owner.start(work(), name="power-up")
        await asyncio.sleep(1)
        component.cancel()
        with pytest.raises(asyncio.CancelledError):
            await component
        assert task.done() and ended == ["work"]
        with pytest.raises(NotRunning):
            owner.start(work(), name="late")

    run_virtual(main())


async def noop(_: NoArgs) -> dict[str, Any]:
    return {}


def test_a_sequence_cannot_start_while_the_sequencer_is_not_running() -> None:
    dispatcher = Dispatcher()
    dispatcher.register(CommandSpec("noop", NoArgs, noop, "Nothing."))
    runner = SequenceRunner(dispatcher, {}, EventBus())

    async def main() -> None:
        await runner.load(LoadArgs('name = "s"\n[[step]]\ncommand = "noop"\n'))
        with pytest.raises(CommandRejected, match="not running"):
            await runner.start(NameArgs("s"))
        assert runner.status_dict()["state"] == "loaded"

    run_virtual(main())


def test_a_loop_ends_on_a_cancel_that_a_library_swallowed() -> None:
    """Python 3.11's wait_for (inside pymodbus) returns the answer that arrived in the same
    instant as a cancel, and the cancel is gone. A device loop that checks `stop_if_cancelled`
    still ends; before, the daemon's shutdown waited forever on such a Modbus meter (found
    in-process under load, 2 runs in 24)."""
    requests = 0

    async def swallowing_request() -> None:
        nonlocal requests
        requests += 1
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            return  # the answer "arrived": the cancel is not raised

    async def device_loop() -> None:
        while True:
            stop_if_cancelled()
            await swallowing_request()

    async def main() -> None:
        task = asyncio.create_task(device_loop())
        await asyncio.sleep(1.01)  # inside a request
        task.cancel()
        asked = requests
        async with asyncio.timeout(10):
            with pytest.raises(asyncio.CancelledError):
                await task
        assert requests == asked  # the request it was in swallowed the cancel; none after

    run_virtual(main())
