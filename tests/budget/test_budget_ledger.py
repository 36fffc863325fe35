"""Budget state across a restart: what the ground set and what the day has spent is kept."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import sqlite3
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_host.budget.data import DataBudgets
from firmware_host.budget.ledger import COALESCE_S, BudgetLedger
from firmware_host.config import DataConfig
from firmware_host.devices.agent import DeviceAgent
from firmware_host.events import EventBus
from firmware_host.gear.capabilities import NATIVE
from firmware_host.groundlink.pacing import Pacer
from tests.virtual_time import run_virtual

DAY_ONE = datetime.datetime(2026, 11, 24, 9, 0, tzinfo=datetime.UTC).timestamp()
TB = 2_000_000_000_000


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def camera(used: int) -> DeviceAgent:
    status = SimpleNamespace(media_used_bytes=used, media_free_bytes=TB - used)
    settings = SimpleNamespace(bitrate_kbps=700_000)
    agent = SimpleNamespace(name="cam-a", kind="camera", status=status, camera_settings=settings,
                            reports=NATIVE["camera"])  # fmt: skip
    return cast(DeviceAgent, agent)


def budgets(path: Path, clock: Clock, pacer: Pacer) -> tuple[DataBudgets, BudgetLedger]:
    ledger = BudgetLedger(path)
    config = DataConfig(downlink_gb_per_day=5.0)
    return DataBudgets(config, EventBus(), pacer, clock=clock, ledger=ledger), ledger


def restart(path: Path, clock: Clock, old: BudgetLedger) -> DataBudgets:
    old.close()
    data, _ = budgets(path, clock, Pacer())  # a new process: its pacer starts from zero
    return data


def test_the_days_downlink_spending_and_queued_proxies_survive_a_restart(tmp_path: Path) -> None:
    clock, pacer = Clock(DAY_ONE), Pacer()
    data, ledger = budgets(tmp_path / "budget.db", clock, pacer)
    pacer.spent = 1_500_000_000
    clock.now += 1
    data.tick()
    data.queue_proxy(take_id=7, duration_s=60)
    again = restart(tmp_path / "budget.db", clock, ledger)
    downlink = again.status()["downlink"]
    assert downlink["telemetry_mb"] == 1500.0
    assert downlink["proxies_queued"] == 1


def test_a_new_day_starts_a_new_allowance(tmp_path: Path) -> None:
    clock, pacer = Clock(DAY_ONE), Pacer()
    data, ledger = budgets(tmp_path / "budget.db", clock, pacer)
    pacer.spent = 4_000_000_000
    clock.now += 1
    data.tick()
    clock.now += 86_400
    again = restart(tmp_path / "budget.db", clock, ledger)
    assert again.status()["downlink"]["telemetry_mb"] == 0.0


def test_media_used_today_counts_from_the_morning_not_from_the_restart(tmp_path: Path) -> None:
    clock = Clock(DAY_ONE)
    data, ledger = budgets(tmp_path / "budget.db", clock, Pacer())
    data.on_device_update(camera(used=100_000_000_000))
    clock.now += 3600
    data.on_device_update(camera(used=250_000_000_000))
    again = restart(tmp_path / "budget.db", clock, ledger)
    again.on_device_update(camera(used=250_000_000_000))
    card = again.status()["media"]["cameras"]["cam-a"]
    share = (TB - 100_000_000_000) / 12
    assert abs(card["today_used_fraction"] - 150_000_000_000 / share) < 1e-3


def test_the_shoot_began_the_day_the_daemon_first_ran(tmp_path: Path) -> None:
    clock = Clock(DAY_ONE)
    _, ledger = budgets(tmp_path / "budget.db", clock, Pacer())
    clock.now += 3 * 86_400
    again = restart(tmp_path / "budget.db", clock, ledger)
    assert again.status()["media"]["days_left"] == 9


@given(
    readings=st.lists(
        st.tuples(st.sampled_from([0, 1, 2]), st.sampled_from([0, 150, 151, 400])), max_size=40
    )
)
def test_a_reading_taken_in_again_changes_nothing(readings: list[tuple[int, int]]) -> None:
    """A camera not recording reads the same at every poll, and the budgets skip a reading
    equal to the last one. Whatever the readings and days, events and status are those of
    budgets that take in every reading."""
    with tempfile.TemporaryDirectory() as folder:
        clock = Clock(DAY_ONE)
        skipping, _ = budgets(Path(folder) / "a.db", clock, Pacer())
        every, _ = budgets(Path(folder) / "b.db", clock, Pacer())
        seen: dict[str, list[str]] = {"skipping": [], "every": []}
        skipping.bus.subscribe(lambda e: seen["skipping"].append(e.name))
        every.bus.subscribe(lambda e: seen["every"].append(e.name))
        for day, used_gb in readings:
            clock.now = DAY_ONE + day * 86_400
            skipping.on_device_update(camera(used=used_gb * 1_000_000_000))
            every._last_reading.clear()
            every.on_device_update(camera(used=used_gb * 1_000_000_000))
            assert skipping.status()["media"] == every.status()["media"]
        assert seen["skipping"] == seen["every"]


def _on_disk(path: Path, key: str) -> object:
    with contextlib.closing(sqlite3.connect(path)) as other:  # another reader: what is written
        row = other.execute("SELECT value FROM entries WHERE key = ?", (key,)).fetchone()
    return None if row is None else json.loads(row[0])


def test_cards_first_read_together_are_written_in_one_transaction_within_the_bound(
    tmp_path: Path,
) -> None:
    """64 devices coming online: each camera's first reading moved the day's start, and each
    was a synced write holding the loop. Both sides: one transaction for them all, on disk
    within COALESCE_S (not before: nothing else pays for it), and read back at once."""
    path = tmp_path / "budget.db"
    clock = Clock(DAY_ONE)
    data, ledger = budgets(path, clock, Pacer())
    writes: list[str] = []
    ledger.db.set_trace_callback(lambda sql: writes.append(sql) if "BEGIN" in sql else None)
    seen: dict[str, object] = {}

    async def main() -> None:
        for index in range(32):  # one per loop turn, 2 ms apart, as they come online
            agent = camera(used=1_000_000 * index)
            agent.name = f"cam-{index:02d}"
            data.on_device_update(agent)
            await asyncio.sleep(0.002)
        seen["held"] = ledger.get("data.media_day_start")
        seen["on disk early"] = _on_disk(path, "data.media_day_start")
        await asyncio.sleep(COALESCE_S - 0.002 * 32 + 0.001)
        seen["on disk"] = _on_disk(path, "data.media_day_start")

    run_virtual(main())
    every = {f"cam-{index:02d}": 1_000_000.0 * index for index in range(32)}
    assert seen["held"] == {"day": "2026-11-24", "used": every}
    assert seen["on disk early"] is None
    assert seen["on disk"] == seen["held"]
    assert len(writes) == 1
    ledger.close()


def test_a_value_put_soon_is_written_by_close(tmp_path: Path) -> None:
    path = tmp_path / "budget.db"

    async def main() -> None:
        ledger = BudgetLedger(path)
        ledger.put_soon("k", {"v": 1})
        ledger.close()

    run_virtual(main())
    assert _on_disk(path, "k") == {"v": 1}


def test_a_close_the_disk_refuses_leaves_no_write_scheduled_and_says_what_is_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    errors: list[object] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, context: errors.append(context))
        ledger = BudgetLedger(tmp_path / "budget.db")
        ledger.put_soon("k", 1)
        ledger.db.execute("PRAGMA query_only = 1")  # the disk refuses from here on
        ledger.close()
        await asyncio.sleep(2 * COALESCE_S)  # a write left scheduled would meet a closed db

    run_virtual(main())
    assert errors == []
    assert any("1 budget entries held in memory are lost" in r.message for r in caplog.records)


def test_a_write_scheduled_on_a_loop_that_ended_does_not_hold_later_ones(tmp_path: Path) -> None:
    path = tmp_path / "budget.db"
    ledger = BudgetLedger(path)

    async def put(value: int, then_wait: float) -> None:
        ledger.put_soon("k", value)
        await asyncio.sleep(then_wait)

    run_virtual(put(1, 0.0))  # that loop ends before its write is due
    ledger.put_soon("k", 2)  # outside any loop: at once
    assert _on_disk(path, "k") == 2
    run_virtual(put(3, 0.0))
    run_virtual(put(4, 2 * COALESCE_S))  # a new loop schedules its own
    assert _on_disk(path, "k") == 4
    ledger.close()


def test_put_soon_outside_an_event_loop_writes_at_once(tmp_path: Path) -> None:
    ledger = BudgetLedger(tmp_path / "budget.db")
    ledger.put_soon("k", 3)
    assert _on_disk(tmp_path / "budget.db", "k") == 3
    ledger.close()
