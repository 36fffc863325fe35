"""Storage fault campaign (`make soak`): a full state disk mid-take, damaged databases.

Real processes: the simulator, the daemon and mosquitto, the ground watching over MQTT.
Each part prints one line with its figure and verdict, then asserts the verdict:
  - full disk: the state directory is a small tmpfs (root only: skipped with the reason
    otherwise) filled up while a take rolls; every command sent meanwhile must be answered
    within 2 s, no task may restart, no device may drop, and the ground must hear
    `storage.recovered` within 5 s of space returning.
  - damaged databases: garbage over a page in the middle of each state file between two
    runs; the daemon must come back and name the file to the ground (or, for unreadable
    replay counters, refuse in one line and stay down), with what each file guards intact.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.broker import Mosquitto
from tests.daemon.conftest import Shoot, shoot
from tests.harness import CAMERA_AND_LIGHT_UNPACED
from tests.soak import report
from tests.storage_damage import damage_page, root_page

pytestmark = pytest.mark.soak

BENCH = CAMERA_AND_LIGHT_UNPACED
TMPFS_MB = 24
ANSWER_WITHIN_S = 2.0
RECOVER_WITHIN_S = 5.0
LIGHT = {"device": "key", "intensity_pct": 30}


@contextlib.contextmanager
def small_tmpfs(where: Path, megabytes: int) -> Iterator[None]:
    if os.geteuid() != 0:
        pytest.skip("a full disk needs a small tmpfs, and mounting one needs root")
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(where)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(directory: Path) -> Path:
    """Write a file until the disk is full; returns it (delete it to free the space)."""
    filler = directory / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for size in (1 << 16, 1 << 10, 1):  # big chunks, then the last few bytes
            chunk = b"\0" * size
            try:
                while os.write(descriptor, chunk):
                    pass
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(descriptor)
    return filler


async def timed(s: Shoot, name: str, args: dict[str, object]) -> tuple[float, dict[str, object]]:
    started = time.monotonic()
    result = await s.ground.command(name, args, timeout=10)
    return time.monotonic() - started, result


async def test_a_full_state_disk_mid_take(
    tmp_path: Path, broker: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    with small_tmpfs(tmp_path / "state", TMPFS_MB):
        async with shoot(tmp_path, broker, BENCH, processes=True) as s:
            await s.ok("record", {"scene": "9", "take": 1})
            await s.ok("light.set", LIGHT)
            filler = fill(tmp_path / "state")
            answers = [await timed(s, "light.set", LIGHT) for _ in range(3)]
            await s.ground.wait_for(
                lambda: any(b.body["backlog"].get("held", 0) > 0 for b in s.ground.births),
                15, "a birth saying messages are held in memory",
            )  # fmt: skip
            answers += [await timed(s, "light.set", LIGHT) for _ in range(3)]
            filler.unlink()
            freed = time.time()
            freed_at = time.monotonic()
            await s.wait_event("storage.recovered", timeout=30, since=freed - 1)
            recover_s = time.monotonic() - freed_at
            fault = s.events("storage.fault")[0]
            health = await s.ok("health")
            await s.ok("cut")
            offline = s.events("device.offline")
    restarts = {name: task["restarts"] for name, task in health["tasks"].items()}
    slowest = max(seconds for seconds, _ in answers)
    statuses = sorted({str(result["status"]) for _, result in answers})
    verdict = (
        slowest <= ANSWER_WITHIN_S and recover_s <= RECOVER_WITHIN_S
        and not any(restarts.values()) and not offline
    )  # fmt: skip
    report(
        capsys,
        f"storage/full-disk: {len(answers)} commands during the outage answered (slowest "
        f"{slowest:.2f} s, {statuses}); fault named {fault['source']}; recovered "
        f"{recover_s:.2f} s after space returned; task restarts {sum(restarts.values())}; "
        f"devices dropped {len(offline)}: {'PASS' if verdict else 'FAIL'}",
    )
    assert slowest <= ANSWER_WITHIN_S, answers
    assert recover_s <= RECOVER_WITHIN_S
    assert not any(restarts.values()), restarts
    assert not offline
    assert fault["severity"] == "critical" and fault["source"].endswith(".db")


async def _shoot_a_little(s: Shoot) -> None:
    """State in every file: takes, a lowered cap, results, events."""
    await s.ok("power.cap.set", {"cap_w": 150, "reason": "station event"})
    for take in range(1, 4):
        await s.ok("record", {"scene": "4", "take": take})
        await s.ok("cut")
    for _ in range(20):
        await s.ok("light.set", LIGHT)


@pytest.mark.parametrize("name", ["budget.db", "shotlog.db", "commands.db", "outbox.db"])
async def test_a_damaged_database_between_two_runs(
    tmp_path: Path, broker: Mosquitto, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    async with shoot(tmp_path, broker, BENCH, processes=True) as s:
        await _shoot_a_little(s)
        s.daemon.stop()
        path = tmp_path / "state" / name
        page = damage_page(path)
        since = time.time()
        started = time.monotonic()
        s.restart_daemon()
        event = await s.wait_event("storage.corrupt", name, timeout=30, since=since)
        back_s = time.monotonic() - started
        budget = await s.ok("budget.status")
        takes = await s.ok("shotlog.query")
        light = await s.ground.command("light.set", LIGHT)
    cap = budget["power"]["cap_w"]
    checks = {
        "named": name in event["message"] and "moved aside" in event["message"],
        "cap": cap <= 150 if name == "budget.db" else cap == 150,
        "log answers": isinstance(takes.get("takes"), list),
        "commands run": light["status"] == "ok",
    }
    verdict = all(checks.values())
    report(
        capsys,
        f"storage/damaged {name} (page {page}): back and reported in {back_s:.1f} s, cap "
        f"{cap:g} W, shot log {len(takes['takes'])} takes, checks {checks}: "
        f"{'PASS' if verdict else 'FAIL'}",
    )
    assert verdict, checks


async def test_unreadable_replay_counters_stop_the_daemon_in_one_line(
    tmp_path: Path, broker: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    async with shoot(tmp_path, broker, BENCH, processes=True) as s:
        await _shoot_a_little(s)
        s.daemon.stop()
        path = tmp_path / "state" / "commands.db"
        damage_page(path, root_page(path, "counters"))
        started = time.monotonic()
        s.restart_daemon()
        assert s.daemon.process is not None
        code = s.daemon.process.wait(timeout=30)
        down_s = time.monotonic() - started
    lines = [line for line in s.daemon.log.read_text().splitlines() if "cannot start" in line]
    verdict = code == 65 and len(lines) == 1 and "commands.db" in lines[0]
    verdict = verdict and "Traceback" not in s.daemon.log.read_text().split("cannot start")[-1]
    report(
        capsys,
        f"storage/damaged commands.db counters: refused in {down_s:.1f} s, exit {code}, "
        f"{len(lines)} line: {'PASS' if verdict else 'FAIL'}",
    )
    assert verdict, lines


async def test_a_restart_on_a_full_state_disk(
    tmp_path: Path, broker: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    with small_tmpfs(tmp_path / "state", TMPFS_MB):
        async with shoot(tmp_path, broker, BENCH, processes=True) as s:
            await s.ok("light.set", LIGHT)
            s.daemon.stop()
            filler = fill(tmp_path / "state")
            births = len(s.ground.births)
            started = time.monotonic()
            s.restart_daemon()
            await s.ground.wait_for(
                lambda: len(s.ground.births) > births, 30, "a birth after the restart"
            )
            up_s = time.monotonic() - started
            answer_s, answer = await timed(s, "light.set", LIGHT)
            filler.unlink()
            freed = time.time()
            freed_at = time.monotonic()
            await s.wait_event("storage.recovered", timeout=30, since=freed - 30)
            recover_s = time.monotonic() - freed_at
            after = await s.ground.command("light.set", LIGHT)
            alive = s.daemon.alive
    verdict = (
        alive and answer_s <= ANSWER_WITHIN_S and recover_s <= RECOVER_WITHIN_S
        and after["status"] == "ok"
    )  # fmt: skip
    report(
        capsys,
        f"storage/restart on a full disk: up in {up_s:.1f} s, a command answered in "
        f"{answer_s:.2f} s ({answer['status']}), recovered {recover_s:.2f} s after space "
        f"returned: {'PASS' if verdict else 'FAIL'}",
    )
    assert verdict, (answer, after)
