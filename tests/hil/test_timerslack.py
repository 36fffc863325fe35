"""The simulator's cables run on 1 ns of timer slack, not the kernel's 50 us default."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hil.timerslack import timer_slack_ns

pytestmark = pytest.mark.skipif(timer_slack_ns() is None, reason="no /proc/<pid>/timerslack_ns")

_SLACK_AFTER = "from hil.timerslack import *; {}; print(timer_slack_ns())"


def _slack_in_a_fresh_process(call: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _SLACK_AFTER.format(call)], capture_output=True, check=True
    )
    return int(out.stdout)


def test_a_process_starts_on_the_default_slack() -> None:
    assert _slack_in_a_fresh_process("pass") > 1


def test_precise_timer_slack_sets_one_nanosecond() -> None:
    assert _slack_in_a_fresh_process("assert precise_timer_slack()") == 1
