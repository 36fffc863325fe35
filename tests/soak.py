"""How the soak and fault campaigns (`make soak`) report: one line each, figure and verdict.

The line goes straight to the terminal (past pytest's capture), so `make soak` shows every
campaign's figure whether it passed or not; the test then asserts the verdict.
"""

from __future__ import annotations

import pytest


def report(capsys: pytest.CaptureFixture[str], line: str) -> None:
    with capsys.disabled():
        print(f"\n[soak] {line}")


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"
