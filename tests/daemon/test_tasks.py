"""Work started on demand belongs to its component's run: refused while it is not running,
ended when it ends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from firmware_host.commands.dispatcher import CommandRejected, CommandSpec, Dispatcher
from firmware_host.events import EventBus
from firmware_host.tasks import NotRunning, TaskOwner
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
