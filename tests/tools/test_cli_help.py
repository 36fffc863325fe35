"""Help a new user can work from: per-subcommand help for keys, fault names for simctl; and
`cupola --help` that costs little more than starting Python."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hil.fault_names import DEVICE_FAULTS, LINE_FAULTS
from protocols.ground import Role
from tests.harness import cupola
from tools.cli import COMMANDS, ROLES, build_parser, main


def _help(*words: str) -> str:
    result = subprocess.run(cupola(*words, "--help"), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return " ".join(result.stdout.split())  # argparse wraps lines anywhere


def test_simctl_help_names_every_fault() -> None:
    text = _help("simctl")
    assert all(name in text for name in (*LINE_FAULTS, *DEVICE_FAULTS))


def test_each_keys_subcommand_has_its_own_help() -> None:
    assert "--role" in _help("keys", "create") and "--out" in _help("keys", "create")
    assert "--keyring" in _help("keys", "list") and "--role" not in _help("keys", "list")
    assert "--id" in _help("keys", "revoke")


def test_the_roles_offered_are_the_protocols() -> None:
    assert [role.value for role in Role] == ROLES


# What `cupola --help` may import beyond an interpreter with pathlib (an editable install's
# start has it already): argparse and what it needs to print help (gettext, locale, textwrap),
# the CLI, the two modules its listing needs, and their `from __future__ import`.
HELP_IMPORTS = {"argparse", "gettext", "locale", "_locale", "textwrap", "tools", "tools.cli",
                "tools.exits", "tools.dailies_cli", "__future__"}  # fmt: skip
LISTING_IMPORTS = """
import pathlib, sys
loaded = set(sys.modules)
from tools.cli import main
try:
    main(["--help"])
except SystemExit:
    print(" ".join(sorted(set(sys.modules) - loaded)), file=sys.stderr)
"""


def test_the_top_level_help_imports_no_subcommand() -> None:
    """`cupola --help` costs an interpreter start and little more: no subcommand's parser or
    imports (they were a third of its time), no typing, no shutil."""
    run = subprocess.run([sys.executable, "-c", LISTING_IMPORTS], capture_output=True,
                         text=True, timeout=60, check=True)  # fmt: skip
    assert set(run.stderr.split()) <= HELP_IMPORTS, set(run.stderr.split()) - HELP_IMPORTS


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines anywhere


def test_every_listed_command_has_its_own_help(capsys: pytest.CaptureFixture[str]) -> None:
    listing = _run(["--help"], capsys)
    assert f"{{{','.join(COMMANDS)}}}" in listing  # every command, in the table's order
    for name, command in COMMANDS.items():
        assert f"{name} {command.help}" in listing
        own = _run([name, "--help"], capsys)
        assert own.startswith(f"usage: cupola {name} ") and command.help in own


def test_only_the_named_command_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    for name, command in COMMANDS.items():

        def arguments(
            p: argparse.ArgumentParser,
            name: str = name,
            real: Callable[[argparse.ArgumentParser], None] = command.arguments,
        ) -> None:
            built.append(name)
            real(p)

        monkeypatch.setattr(command, "arguments", arguments)
    args = build_parser().parse_args(["daemon", "--check", "cupola.toml"])
    assert built == ["daemon"] and args.check == Path("cupola.toml")
