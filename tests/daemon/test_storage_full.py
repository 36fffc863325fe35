"""A state disk that refuses writes mid-take: nothing crashes, everything is said, and it
recovers as soon as it takes writes again.

Faults are SQLite's own: `PRAGMA max_page_count` makes a database "full" exactly as a full
disk does (SQLITE_FULL, "database or disk is full"), and `PRAGMA query_only` refuses writes
as a read-only remount does (SQLITE_READONLY). The real thing, a full tmpfs, is in the soak
campaign (tests/soak/test_storage_faults.py).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from firmware_host.budget.ledger import BudgetLedger
from firmware_host.daemon import Daemon
from firmware_host.events import Event, EventBus
from firmware_host.groundlink.outbox import EVENTS, ROUTINE, Outbox
from firmware_host.storage_guard import StorageFault, StorageGuard
from firmware_host.workflow.shotlog import ClipFacts, ShotLog
from tests.daemon.test_storage_integrity import config_and_keys
from tests.harness import Credentials
from tools.ground_client import sign_command


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def guard_with_events() -> tuple[StorageGuard, list[Event], Clock]:
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe(events.append)
    clock = Clock()
    return StorageGuard(bus, clock=clock), events, clock


def fill_up(db: sqlite3.Connection) -> None:
    """No page can be added any more: the next write that needs one finds the disk full."""
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")


def make_room(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA max_page_count = 1073741823")


def append_until_held(outbox: Outbox, limit: int = 10_000) -> int:
    """Append events until the disk refuses one (it is then held); returns how many."""
    for number in range(limit):
        outbox.append("event", {"name": "test.fill", "n": number, "pad": "z" * 200})
        if outbox.backlog()["held"]:
            return number + 1
    raise AssertionError("the outbox never filled up")


def names(events: list[Event]) -> list[str]:
    return [e.name for e in events]


# -- the outbox ------------------------------------------------------------------------------


def test_a_full_disk_holds_messages_in_order_and_writes_them_when_space_returns(
    tmp_path: Path,
) -> None:
    guard, events, clock = guard_with_events()
    outbox = Outbox(tmp_path / "outbox.db", max_bytes=10**9, guard=guard)
    fill_up(outbox.db)
    written = append_until_held(outbox)  # this one never raised: it is held
    (fault,) = [e for e in events if e.name == "storage.fault"]
    assert fault.severity.name == "CRITICAL" and fault.source == "outbox.db"
    assert "database or disk is full" in fault.message
    for number in range(written, written + 50):  # the take goes on
        outbox.append("event", {"name": "test.fill", "n": number})
        outbox.append("telemetry", {"n": number}, ROUTINE)
    assert outbox.backlog()["held"] == 101
    assert guard.probe() is False  # still full: nothing lost, nothing reported twice
    assert names(events).count("storage.fault") == 1
    make_room(outbox.db)
    clock.now += 3.0
    assert guard.probe() is True
    (recovered,) = [e for e in events if e.name == "storage.recovered"]
    assert recovered.data["outage_s"] == 3.0 and "101 messages" in recovered.message
    sent = []
    while batch := outbox.next_batch(64):
        outbox.acknowledged([row.id for row in batch])
        sent += batch
    numbers = [json.loads(row.body)["n"] for row in sent if row.kind == "event"]
    assert numbers == list(range(written + 50))  # every event, once, in order
    assert [row.seq for row in sent] == list(range(1, len(sent) + 1))
    assert outbox.backlog()["held"] == 0


def test_memory_held_during_a_full_disk_is_bounded_and_drops_samples_before_events(
    tmp_path: Path,
) -> None:
    guard, events, _ = guard_with_events()
    outbox = Outbox(tmp_path / "outbox.db", max_bytes=10**9, guard=guard, held_max=20)
    fill_up(outbox.db)
    append_until_held(outbox)
    for number in range(30):
        outbox.append("telemetry", {"n": number}, ROUTINE)
    for number in range(10):
        outbox.append("result", {"id": f"cmd-{number}"}, EVENTS)
    assert outbox.backlog()["held"] == 20
    make_room(outbox.db)
    assert guard.probe()
    rows = outbox.db.execute("SELECT kind FROM outbox WHERE kind = 'result'").fetchall()
    assert len(rows) == 10  # every result kept; samples made the room
    assert "dropped (memory full)" in events[-1].message


def test_the_birth_counter_and_acknowledgements_survive_a_full_disk(tmp_path: Path) -> None:
    guard, _, _ = guard_with_events()
    path = tmp_path / "outbox.db"
    outbox = Outbox(path, max_bytes=10**9, guard=guard)
    outbox.append("event", {"name": "before"})
    batch = outbox.next_batch(10)
    first = outbox.next_bd_seq()
    outbox.db.execute("PRAGMA query_only = 1")  # the disk refuses every write
    during = [outbox.next_bd_seq(), outbox.next_bd_seq()]
    assert during == [first + 1, first + 2]  # sessions still start, numbers still rise
    outbox.acknowledged([row.id for row in batch])  # refused: kept in memory
    assert outbox.next_batch(10) == []  # acknowledged rows are never sent again
    outbox.db.execute("PRAGMA query_only = 0")
    assert guard.probe()
    outbox.close()
    reopened = Outbox(path, max_bytes=10**9)
    assert reopened.next_bd_seq() == first + 3  # never a number handed out twice
    assert reopened.next_batch(10) == []


def test_held_events_are_in_the_onboard_event_log_at_once(tmp_path: Path) -> None:
    guard, _, _ = guard_with_events()
    outbox = Outbox(tmp_path / "outbox.db", max_bytes=10**9, guard=guard)
    outbox.db.execute("PRAGMA query_only = 1")
    outbox.append("event", {"name": "disk.alarm", "severity": "critical"})
    assert [e["name"] for e in outbox.recent_events(5)] == ["disk.alarm"]


# -- the ledger and the shot log -----------------------------------------------------------


def test_a_cap_cut_on_a_full_disk_holds_and_is_written_when_space_returns(
    tmp_path: Path,
) -> None:
    guard, events, _ = guard_with_events()
    path = tmp_path / "budget.db"
    ledger = BudgetLedger(path, guard)
    ledger.put("power", {"cap_w": 300})
    ledger.db.execute("PRAGMA query_only = 1")
    ledger.put("power", {"cap_w": 120})  # no exception: the power loop carries on
    assert ledger.get("power") == {"cap_w": 120}
    assert "storage.fault" in names(events)
    ledger.db.execute("PRAGMA query_only = 0")
    assert guard.probe()
    ledger.close()
    assert BudgetLedger(path).get("power") == {"cap_w": 120}


def test_the_shot_log_on_a_full_disk_names_the_file_and_never_stops_a_camera_agent(
    tmp_path: Path,
) -> None:
    guard, _, _ = guard_with_events()
    log = ShotLog(tmp_path / "shotlog.db", guard)
    log.db.execute("PRAGMA query_only = 1")
    with pytest.raises(StorageFault, match=r"shotlog\.db: attempt to write a readonly database"):
        log.take_started(
            scene="1", take=1, roll="A001", start_frame=0, frame_rate=25.0, clips={"cam-a": 1},
            settings={},
        )  # fmt: skip
    log.clip_closed("cam-a", 1, 100, 100, 1000)  # deferred to the next adoption
    clip = ClipFacts("cam-a", 1, 0, 100, 100, 1000, "1", 1, "A001", closed=True)
    assert log.reconcile("cam-a", [clip], 25.0) == {"added": 0, "closed": 0}
    assert guard.degraded
    log.db.execute("PRAGMA query_only = 0")
    assert log.reconcile("cam-a", [clip], 25.0) == {"added": 1, "closed": 0}


# -- the daemon: commands are answered, never queued behind the disk -------------------------


def daemon_for(tmp_path: Path) -> tuple[Daemon, Credentials, list[dict[str, Any]]]:
    config, credentials = config_and_keys(tmp_path)
    daemon = Daemon(config)
    published: list[dict[str, Any]] = []
    daemon.ground.publish_local_result = published.append  # type: ignore[method-assign]
    return daemon, credentials, published


async def handle(daemon: Daemon, payload: bytes) -> None:
    """One command message through the daemon's intake, as the MQTT listener and the command
    worker pass it."""
    daemon.intake.receive(payload)
    assert await daemon.intake.process_next(0)


def signed(credentials: Credentials, name: str, args: dict[str, Any]) -> bytes:
    return json.dumps(sign_command(credentials.flight, name, args)).encode()


def test_every_command_is_answered_and_none_runs_while_commands_cannot_be_stored(
    tmp_path: Path,
) -> None:
    daemon, credentials, published = daemon_for(tmp_path)
    daemon.intake.db.execute("PRAGMA query_only = 1")
    cut = signed(credentials, "power.cap.set", {"cap_w": 150, "reason": "test"})
    asyncio.run(handle(daemon, cut))
    (answer,) = published
    assert answer["id"] == json.loads(cut)["id"] and answer["status"] == "rejected"
    assert answer["reason"].startswith("refused: the state disk refused a write (commands.db")
    assert "not executed" in answer["reason"]
    assert daemon.power.governor.cap_w == 300.0
    assert daemon.guard.degraded
    daemon.intake.db.execute("PRAGMA query_only = 0")
    assert daemon.guard.probe()
    later = signed(credentials, "power.cap.set", {"cap_w": 140, "reason": "test"})
    asyncio.run(handle(daemon, later))
    assert published[-1]["status"] == "ok"
    assert daemon.power.governor.cap_w == 140.0  # the refused one was never replayed
    daemon.close()


def test_a_result_whose_storing_fails_is_still_published_once(tmp_path: Path) -> None:
    daemon, credentials, published = daemon_for(tmp_path)
    db = daemon.intake.db
    fill_up(db)
    for _ in range(500):  # results fill the last pages; the counter row updates in place
        asyncio.run(handle(daemon, signed(credentials, "budget.status", {})))
        if daemon.guard.degraded:
            break
    assert daemon.guard.degraded
    last = published[-1]
    assert last["status"] == "ok"  # it ran, and says so: not a second, contradicting answer
    assert sum(1 for body in published if body["id"] == last["id"]) == 1
    daemon.close()


def test_the_daemon_keeps_sampling_and_reporting_on_a_full_outbox(tmp_path: Path) -> None:
    daemon, credentials, published = daemon_for(tmp_path)
    fill_up(daemon.outbox.db)
    append_until_held(daemon.outbox)
    for _ in range(5):
        daemon.outbox.append("telemetry", daemon.sample(), ROUTINE)
    asyncio.run(handle(daemon, signed(credentials, "budget.status", {})))
    assert published[-1]["status"] == "ok"  # the crew has its answer at once
    assert daemon.outbox.backlog()["held"] >= 7
    assert [e["name"] for e in daemon.outbox.recent_events(1000)].count("storage.fault") == 1
    make_room(daemon.outbox.db)
    assert daemon.guard.probe()
    assert daemon.outbox.backlog()["held"] == 0
    daemon.close()


# -- the guard: damage is not a full disk; start-up and shutdown on a full disk ---------------


def test_a_file_found_damaged_while_running_keeps_the_guard_degraded_until_restart(
    tmp_path: Path,
) -> None:
    guard, events, _ = guard_with_events()
    outbox = Outbox(tmp_path / "outbox.db", max_bytes=10**9, guard=guard)
    damage = sqlite3.DatabaseError("database disk image is malformed")
    damage.sqlite_errorcode = 11  # type: ignore[attr-defined]  # SQLITE_CORRUPT, as SQLite sets it
    message = r"commands\.db: database disk image is malformed"
    with pytest.raises(StorageFault, match=message), guard.using(tmp_path / "commands.db"):
        raise damage
    (fault,) = [e for e in events if e.name == "storage.fault"]
    assert "restart the daemon" in fault.message and fault.data["damaged"] is True
    outbox.db.execute("PRAGMA query_only = 1")
    outbox.append("event", {"name": "held"})
    outbox.db.execute("PRAGMA query_only = 0")
    assert guard.probe() is False  # free space does not mend a damaged file: no flapping
    assert outbox.backlog()["held"] == 0  # but what the outbox held is written all the same
    assert "storage.recovered" not in names(events)


def test_a_full_disk_that_is_not_damage_is_told_to_free_space(tmp_path: Path) -> None:
    guard, events, _ = guard_with_events()
    ledger = BudgetLedger(tmp_path / "budget.db", guard)
    fill_up(ledger.db)
    for day in range(1000):
        ledger.put(f"filler.{day}", "x" * 100)
        if guard.degraded:
            break
    (fault,) = [e for e in events if e.name == "storage.fault"]
    assert "free space" in fault.message and fault.data["damaged"] is False


def test_the_daemon_starts_on_a_state_disk_that_refuses_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, credentials = config_and_keys(tmp_path)
    first = Daemon(config)
    for day in range(50):  # results old enough to be pruned at the next start
        first.intake.db.execute(
            "INSERT INTO results (id, ts, body) VALUES (?, 0, '{}')", (f"old-{day}",)
        )
    first.close()
    original = sqlite3.connect

    def read_only(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection = original(*args, **kwargs)
        connection.execute("PRAGMA query_only = 1")
        return connection

    with monkeypatch.context() as patch:
        patch.setattr(sqlite3, "connect", read_only)
        daemon = Daemon(config)  # every write refused, from the first one on
    published: list[dict[str, Any]] = []
    daemon.ground.publish_local_result = published.append  # type: ignore[method-assign]
    asyncio.run(handle(daemon, signed(credentials, "budget.status", {})))
    assert published[-1]["status"] == "rejected"
    assert daemon.guard.degraded
    assert daemon.outbox.backlog()["held"] > 0  # the fault event, among others
    daemon.close()


def test_what_the_outbox_holds_is_written_at_shutdown_if_the_disk_allows(
    tmp_path: Path,
) -> None:
    guard, _, _ = guard_with_events()
    path = tmp_path / "outbox.db"
    outbox = Outbox(path, max_bytes=10**9, guard=guard)
    outbox.db.execute("PRAGMA query_only = 1")
    outbox.append("event", {"name": "last words", "severity": "critical"})
    outbox.db.execute("PRAGMA query_only = 0")
    outbox.close()
    assert [e["name"] for e in Outbox(path, max_bytes=10**9).recent_events(5)] == ["last words"]


def test_a_shot_log_that_cannot_be_read_asks_the_camera_about_every_clip(
    tmp_path: Path,
) -> None:
    guard, events, _ = guard_with_events()
    log = ShotLog(tmp_path / "shotlog.db", guard)
    log.reconcile("cam-a", [ClipFacts("cam-a", 1, 0, 100, 100, 1000, "1", 1, "A001", True)], 25.0)
    assert log.settled_clip_ids("cam-a") == {1}
    log.db.close()  # as good as unreadable: SQLite says so on every access
    damage = sqlite3.DatabaseError("database disk image is malformed")
    damage.sqlite_errorcode = 11  # type: ignore[attr-defined]

    class Damaged:
        def execute(self, *_: object) -> object:
            raise damage

    log.db = Damaged()  # type: ignore[assignment]
    assert log.settled_clip_ids("cam-a") == set()  # the adoption goes on, camera agent lives
    assert [e.source for e in events if e.name == "storage.fault"] == ["shotlog.db"]
