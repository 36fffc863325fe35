"""Help a new user can work from: per-subcommand help for keys, fault names for simctl."""

from __future__ import annotations

import subprocess

from hil.fault_names import DEVICE_FAULTS, LINE_FAULTS
from protocols.ground import Role
from tests.harness import cupola
from tools.cli import ROLES


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
