"""The dispatcher's command signatures, derived once for every birth certificate."""

from __future__ import annotations

from typing import Any

import msgspec

from firmware_host.commands.dispatcher import CommandSpec, Dispatcher


class Level(msgspec.Struct):
    permille: int


class NoArgs(msgspec.Struct):
    pass


async def _run(_: Any) -> dict[str, Any]:
    return {}


def test_a_command_registered_after_the_signatures_were_read_is_in_the_next_reading() -> None:
    dispatcher = Dispatcher()
    dispatcher.register(CommandSpec("dim", Level, _run, "Dim a light."))
    first = dispatcher.signatures()
    dispatcher.register(CommandSpec("ping", NoArgs, _run, "Answer.", hazardous=True))
    second = dispatcher.signatures()
    assert list(first) == ["dim"]
    assert list(second) == ["dim", "ping"]
    assert second["ping"].hazardous and not second["dim"].hazardous
    assert list(second["dim"].args) == ["permille"]


def test_a_caller_changing_its_reading_changes_no_one_elses() -> None:
    dispatcher = Dispatcher()
    dispatcher.register(CommandSpec("dim", Level, _run, "Dim a light."))
    reading = dispatcher.signatures()
    reading.clear()
    assert list(dispatcher.signatures()) == ["dim"]
