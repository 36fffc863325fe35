"""Shared fixtures: a private mosquitto per test, and cleanup of every started process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from hil.broker import Mosquitto
from tests.harness import stop_all

# The suite is deterministic: every run draws the same examples. `HYPOTHESIS_PROFILE=explore`
# draws fresh random examples, many more of them, to hunt for new failures.
settings.register_profile(
    "default",
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile(
    "explore", parent=settings.get_profile("default"), derandomize=False, max_examples=2000
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `long` first: xdist hands tests out in this order, so no worker starts a
    25 s test when the others are nearly done and the run waits on it alone."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "broker") as instance:
        yield instance
        # Daemons stop while their broker still answers: a broker gone first leaves each of
        # them waiting out its shutdown flush (5 s) and death timeout for nobody.
        stop_all()


@pytest.fixture(autouse=True)
def _no_stray_processes() -> Iterator[None]:
    yield
    stop_all()
