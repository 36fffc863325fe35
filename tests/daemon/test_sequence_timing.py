"""A script's timing, on virtual time: steps run exactly when they are due, pauses excluded.

The sequencer reads the loop's clock, so these run in milliseconds and never by chance;
the end-to-end runs (processes, PTYs, mosquitto) stay in test_controller.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from firmware_host.commands.dispatcher import CommandSpec, Dispatcher
from firmware_host.events import Event, EventBus
from firmware_host.workflow.sequencer import LoadArgs, NameArgs, NoArgs, SequenceRunner
from tests.virtual_time import run_virtual

SCRIPT = """
name = "timed"
[[step]]
command = "mark"
[[step]]
after = 2.5
command = "mark"
[[step]]
at = 10.0
command = "mark"
"""


def sequencer() -> tuple[SequenceRunner, list[float], list[Event]]:
    marks: list[float] = []

    async def mark(_: NoArgs) -> dict[str, Any]:
        marks.append(asyncio.get_running_loop().time())
        return {}

    dispatcher = Dispatcher()
    dispatcher.register(CommandSpec("mark", NoArgs, mark, "Note the time."))
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe(events.append)
    runner = SequenceRunner(dispatcher, {}, bus)
    for spec in runner.commands():
        dispatcher.register(spec)
    return runner, marks, events


async def run_script(
    runner: SequenceRunner, events: list[Event], pause: tuple[float, float]
) -> None:
    """Start the script at t = 0, pause it from pause[0] for pause[1] s, wait for its end."""
    async with asyncio.timeout(60), asyncio.TaskGroup() as group:
        owner = group.create_task(runner.run())
        await asyncio.sleep(0)  # the sequencer is running
        await runner.load(LoadArgs(SCRIPT))
        await runner.start(NameArgs("timed"))
        await asyncio.sleep(pause[0])
        await runner.pause(NoArgs())
        await asyncio.sleep(pause[1])
        await runner.resume(NoArgs())
        await finished(events)
        owner.cancel()


async def finished(events: list[Event]) -> None:
    """Return when the sequence has finished (virtual time: the steps in between are free)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while not any(e.name == "sequence.finished" for e in events):
        assert loop.time() < deadline, "the sequence never finished"
        await asyncio.sleep(0.5)


def test_steps_run_when_due_and_a_pause_shifts_what_is_left() -> None:
    runner, marks, events = sequencer()
    run_virtual(run_script(runner, events, pause=(4.0, 3.0)))
    # `after` counts from the previous step's end; `at` from the start, the 3 s pause excluded.
    assert marks == pytest.approx([0.0, 2.5, 13.0], abs=1e-6)


def test_a_pause_during_a_wait_holds_the_next_step_back_by_the_pause() -> None:
    runner, marks, events = sequencer()
    run_virtual(run_script(runner, events, pause=(1.0, 5.0)))
    assert marks == pytest.approx([0.0, 7.5, 15.0], abs=1e-6)
