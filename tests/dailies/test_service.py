"""The daemon's side of offload: a worker process per card, its lines turned into status and
events, and the format guard that keeps a card until every clip on it has a verified copy."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_host.dailies.config import DailiesConfig
from firmware_host.dailies.service import DailiesService
from firmware_host.events import Event, EventBus
from tests.dailies.cards import clip, render_card

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


def _service(tmp_path: Path, store: Path | None = None) -> tuple[DailiesService, list[Event]]:
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe(events.append)
    config = DailiesConfig(store=str(store or tmp_path / "store"),
                           cards={"cam-a": str(tmp_path / "cards" / "cam-a")})  # fmt: skip
    return DailiesService(config, tmp_path / "state", bus), events


def test_a_worker_offloads_the_card_and_the_guard_then_lets_it_be_formatted(
    tmp_path: Path,
) -> None:
    card = tmp_path / "cards" / "cam-a"
    render_card(card, "cam-a", [clip(1), clip(2, take=2)])
    service, events = _service(tmp_path)
    names = ["A001C001.mov", "A001C002.mov"]
    refusal = service.refusal_for("cam-a", card, names)
    assert refusal is not None and "2 clips have no verified copy" in refusal
    assert "A001C001.mov (not offloaded and verified)" in refusal
    assert service.status()["cam-a"]["waiting"] == 2
    assert asyncio.run(service.offload("cam-a", card)) == 0
    done = [e for e in events if e.name == "offload.done"]
    assert len(done) == 1 and done[0].data["verified"] == 2
    status = service.status()["cam-a"]
    assert status["offloaded"] == 2 and status["waiting"] == 0 and status["done"] == status["total"]
    assert status["rate_bytes_per_s"] > 0
    assert service.refusal_for("cam-a", card, names) is None
    # A clip the camera holds whose file is still being written, or changed since its copy:
    (card / "A001C003.mov.partial").write_bytes(b"half")
    (card / "A001C002.mov").write_bytes(b"rewritten")
    refusal = service.refusal_for("cam-a", card, [*names, "A001C003.mov"])
    assert refusal is not None and "2 clips" in refusal
    assert "A001C003.mov (still being written)" in refusal
    assert "A001C002.mov (not offloaded and verified)" in refusal
    service.close()


def test_a_worker_that_cannot_go_on_raises_a_critical_event(tmp_path: Path) -> None:
    card = tmp_path / "cards" / "cam-a"
    render_card(card, "cam-a", [clip(1)])
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the store should be")
    service, events = _service(tmp_path, store=blocked)
    assert asyncio.run(service.offload("cam-a", card)) == 2
    (failed,) = [e for e in events if e.name == "offload.failed"]
    assert failed.severity.name == "CRITICAL"
    assert "FileExistsError" in failed.message or "NotADirectoryError" in failed.message
    assert "the card keeps the only copy" in failed.message
    assert service.refusal_for("cam-a", card, ["A001C001.mov"]) is not None
    service.close()


def test_the_worker_runs_at_the_lowest_cpu_priority(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copying and hashing a card is heavy: the worker must not take the CPU from the
    daemon's polls (firmware_host/dailies/background.py). The worker, as started, says how
    nice it is."""
    said = tmp_path / "niceness"
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\nnice > {said}\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(python))
    card = tmp_path / "cards" / "cam-a"
    render_card(card, "cam-a", [clip(1)])
    service, events = _service(tmp_path)
    assert asyncio.run(service.offload("cam-a", card)) == 0
    assert [e.name for e in events if e.name.startswith("offload.")] == ["offload.done"]
    assert said.read_text().strip() == "19"
    service.close()


def test_the_background_priority_is_the_lowest_whatever_the_daemons_own() -> None:
    """`nice -n` adds to the caller's niceness: a daemon run at -5 (a unit's `Nice=`) would
    start its transcodes at 14 with a fixed increment of 19. Lowering a niceness needs
    privilege: without it, there is nothing to see."""
    script = (
        "import os, subprocess\n"
        "try:\n    os.setpriority(os.PRIO_PROCESS, 0, -5)\n"
        "except PermissionError:\n    raise SystemExit('unprivileged')\n"
        "from firmware_host.dailies.background import in_background\n"
        "print(subprocess.run(in_background(['sh', '-c', 'nice']), capture_output=True,"
        " text=True).stdout.strip())\n"
    )
    said = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    if "unprivileged" in said.stderr:
        pytest.skip("lowering a niceness needs privilege here")
    assert said.stdout.strip() == "19", said.stderr
