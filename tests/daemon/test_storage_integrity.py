"""Damage inside a state database is found at start-up, named, and refused or recovered from.

Each test writes garbage over a page in the middle of a real database file (not the header,
not a truncation), then opens it the way the daemon does. The check reads a file that was
read through in order first (a cold file is otherwise read scattered, page by page).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from firmware_host import storage
from firmware_host.budget.ledger import STATION_EVENT_CAP_W, BudgetLedger
from firmware_host.commands.dispatcher import Dispatcher
from firmware_host.config import Config, parse_config
from firmware_host.daemon import EXIT_STATE_UNUSABLE, Daemon, run_daemon
from firmware_host.events import EventBus
from firmware_host.groundlink.intake import KEPT_ON_RECOVERY, CommandIntake
from firmware_host.groundlink.outbox import MIGRATIONS, Outbox
from firmware_host.storage import StorageCorrupt, open_database, read_through
from firmware_host.workflow.shotlog import ShotLog
from protocols import ground
from protocols.ground import read_keyring
from tests.harness import Credentials
from tests.storage_damage import damage_page, root_page, scalar
from tools.ground_client import sign_command


def filled_outbox(path: Path) -> None:
    outbox = Outbox(path, max_bytes=10**9)
    outbox.db.execute("PRAGMA synchronous=OFF")  # set-up speed only
    for number in range(300):
        outbox.append("event", {"name": "test.filler", "n": number, "pad": "x" * 80})
    outbox.close()


def filled_shotlog(path: Path) -> None:
    log = ShotLog(path)
    log.db.execute("PRAGMA synchronous=OFF")  # set-up speed only
    for take in range(1, 200):
        log.take_started(
            scene="12", take=take, roll="A001", start_frame=1000 * take, frame_rate=25.0,
            clips={"cam-a": take}, settings={"cam-a": {"iso": 800}},
        )  # fmt: skip
    log.close()


def intake(path: Path, keyring: Path) -> tuple[CommandIntake, list[dict[str, Any]]]:
    results: list[dict[str, Any]] = []
    return CommandIntake(
        read_keyring(keyring), Dispatcher(), EventBus(), path, results.append
    ), results


def answer(commands: CommandIntake, results: list[dict[str, Any]], payload: bytes) -> Any:
    """The result of one command message, received and handled as the daemon does."""
    commands.receive(payload)
    assert asyncio.run(commands.process_next(0))
    return results[-1]


def filled_commands(path: Path, credentials: Credentials) -> None:
    commands, results = intake(path, credentials.keyring)
    commands.db.execute("PRAGMA synchronous=OFF")  # set-up speed only
    for _ in range(150):  # many stored results: the file spans many pages
        answer(commands, results, _signed(credentials, "health"))
    commands.close()


def _signed(credentials: Credentials, name: str) -> bytes:
    return json.dumps(sign_command(credentials.flight, name, {})).encode()


def test_opening_a_database_with_a_damaged_middle_page_is_refused_naming_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.db"
    filled_outbox(path)
    damage_page(path)
    with pytest.raises(StorageCorrupt) as caught:
        open_database(path, [])
    assert str(path) in str(caught.value)


def test_a_database_and_its_wal_are_read_through_before_sqlite_opens_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "outbox.db"
    filled_outbox(path)
    seen: list[str] = []
    connect, check = sqlite3.connect, storage.integrity_problems

    def connected(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        seen.append("connect")
        return connect(*args, **kwargs)

    def checked(connection: sqlite3.Connection, table: str | None = None) -> list[str]:
        seen.append("check")
        return check(connection, table)

    def read(p: Path) -> int:
        seen.append(f"read {p.name}")
        return 0

    monkeypatch.setattr(storage, "read_through", read)
    monkeypatch.setattr(storage.sqlite3, "connect", connected)
    monkeypatch.setattr(storage, "integrity_problems", checked)
    open_database(path, MIGRATIONS).close()
    assert seen == ["read outbox.db", "read outbox.db-wal", "connect", "check"]


def test_a_database_opened_for_a_full_disk_stays_locked_against_other_processes(
    tmp_path: Path,
) -> None:
    """Exclusive locking (no room for the -shm file) is the only guard of that open; closing
    any other descriptor of the file after SQLite locked it would drop the lock."""
    path = tmp_path / "outbox.db"
    filled_outbox(path)
    connection = storage._open(path, MIGRATIONS, exclusive=True, checked=False)
    try:
        connection.execute("SELECT COUNT(*) FROM outbox").fetchone()  # takes the lock
        other = subprocess.run(
            [sys.executable, "-c", _READ_ANOTHER_WAY, str(path)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert "database is locked" in other.stderr, other.stdout + other.stderr
    finally:
        connection.close()


_READ_ANOTHER_WAY = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=0)
print(db.execute("SELECT COUNT(*) FROM outbox").fetchone())
"""


def test_read_through_reads_every_byte_of_a_file_and_nothing_of_anything_else(
    tmp_path: Path,
) -> None:
    path = tmp_path / "big"
    size = 8 * storage.READ_THROUGH_CHUNK + 123  # more than a chunk, not a whole number of them
    path.write_bytes(b"\x5a" * size)
    assert read_through(path) == size
    assert read_through(tmp_path / "missing") == 0  # a database not made yet, no WAL
    assert read_through(tmp_path) == 0  # a directory: the check will say what it is
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reading = threading.Thread(target=read_through, args=(fifo,), daemon=True)
    reading.start()
    reading.join(10)
    assert not reading.is_alive(), "read_through waited on a FIFO: start-up would hang"


def test_a_sound_database_opens_without_a_recovery(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    filled_outbox(path)
    outbox = Outbox(path, max_bytes=10**9)
    assert outbox.recovery is None
    assert outbox.backlog()["messages"] == 300
    assert [p.name for p in tmp_path.iterdir() if ".corrupt-" in p.name] == []


def test_a_damaged_outbox_is_moved_aside_and_a_fresh_one_streams(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    filled_outbox(path)
    old_stream = scalar(path, "SELECT value FROM meta WHERE key = 'stream_id'")
    damage_page(path)
    outbox = Outbox(path, max_bytes=10**9)
    assert outbox.recovery is not None
    assert outbox.recovery.moved_to.exists()
    assert outbox.stream_id != old_stream  # the ground starts its count afresh
    outbox.append("event", {"name": "after"})
    assert [row.seq for row in outbox.next_batch(10)] == [1]


def test_a_damaged_shot_log_is_moved_aside_and_the_new_one_answers_queries(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shotlog.db"
    filled_shotlog(path)
    damage_page(path)
    log = ShotLog(path)
    assert log.recovery is not None and log.recovery.moved_to.exists()
    assert log.query() == []
    log.take_started(
        scene="12", take=200, roll="A001", start_frame=1, frame_rate=25.0, clips={"cam-a": 1},
        settings={},
    )  # fmt: skip
    assert [t["take"] for t in log.query()] == [200]


def test_damaged_command_results_are_dropped_but_the_replay_counters_are_kept(
    tmp_path: Path,
) -> None:
    credentials = Credentials(tmp_path)
    path = tmp_path / "commands.db"
    filled_commands(path, credentials)
    last = scalar(path, "SELECT last FROM counters")
    damage_page(path)  # the middle of the file: a page of stored results
    commands, results = intake(path, credentials.keyring)
    assert commands.recovery is not None and commands.recovery.kept == KEPT_ON_RECOVERY
    stale = sign_command(credentials.flight, "health", {})
    stale["counter"] = last  # already used before the damage
    stale["sig"] = ground.signature(credentials.flight.secret_bytes(), stale)
    refused = answer(commands, results, json.dumps(stale).encode())
    assert refused["status"] == "rejected" and "replayed" in refused["reason"]
    fresh = answer(commands, results, _signed(credentials, "health"))
    assert "replayed" not in fresh.get("reason", "")


def test_damaged_replay_counters_refuse_start_naming_the_file_and_what_to_do(
    tmp_path: Path,
) -> None:
    credentials = Credentials(tmp_path)
    path = tmp_path / "commands.db"
    filled_commands(path, credentials)
    damage_page(path, root_page(path, "counters"))
    with pytest.raises(StorageCorrupt) as caught:
        intake(path, credentials.keyring)
    message = str(caught.value)
    assert str(path) in message and "replay" in message and "revok" in message
    assert path.exists()  # nothing moved: the operator decides


# -- the daemon ------------------------------------------------------------------------------


def config_and_keys(tmp_path: Path, power: str = "") -> tuple[Config, Credentials]:
    """A daemon with no devices and no reachable broker: its stores, budgets and commands."""
    (tmp_path / "keys").mkdir(exist_ok=True)
    credentials = Credentials(tmp_path / "keys")
    config = parse_config(
        f'[node]\nstate_dir = "{tmp_path / "state"}"\n[mqtt]\nurl = "mqtt://127.0.0.1:1"\n'
        f'[auth]\nkeyring = "{credentials.keyring}"\n{power}'
    )
    return config, credentials


def config_for(tmp_path: Path, power: str = "") -> Config:
    return config_and_keys(tmp_path, power)[0]


def events_named(daemon: Daemon, name: str) -> list[dict[str, Any]]:
    return [e for e in daemon.outbox.recent_events(1000) if e["name"] == name]


def test_a_ground_set_cap_survives_a_restart(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    first = Daemon(config)
    first.power.set_cap(150.0, "station event")
    first.close()
    second = Daemon(config)
    assert second.power.governor.cap_w == 150.0
    assert events_named(second, "storage.corrupt") == []
    second.close()


def test_a_damaged_budget_ledger_starts_at_the_most_conservative_cap_and_says_so(
    tmp_path: Path,
) -> None:
    config = config_for(tmp_path)
    first = Daemon(config)
    first.power.set_cap(150.0, "station event")
    first.ledger.db.execute("PRAGMA synchronous=OFF")  # set-up speed only
    for day in range(400):  # enough entries that the ledger spans pages
        first.ledger.put(f"filler.{day}", {"pad": "y" * 60})
    first.close()
    damage_page(tmp_path / "state" / "budget.db")
    second = Daemon(config)
    assert second.power.governor.cap_w == STATION_EVENT_CAP_W  # not the configured 300 W
    assert second.power.base_cap_w == STATION_EVENT_CAP_W
    (event,) = events_named(second, "storage.corrupt")
    assert event["severity"] == "critical" and event["source"] == "budget.db"
    assert "moved aside" in event["message"] and "cap" in event["message"]
    changed = events_named(second, "power.cap_changed")
    assert changed and "budget.db was damaged" in changed[0]["message"]
    second.close()
    third = Daemon(config)  # the fallback is itself remembered
    assert third.power.governor.cap_w == STATION_EVENT_CAP_W
    third.close()


def test_the_conservative_cap_is_never_above_a_lower_configured_one(tmp_path: Path) -> None:
    config = config_for(
        tmp_path,
        "[power]\ncap_w = 300\n[[power.timeline]]\nat = 2020-01-01T00:00:00Z\ncap_w = 90\n"
        "until = 2020-01-01T01:00:00Z\n",
    )
    Daemon(config).close()
    ledger = BudgetLedger(tmp_path / "state" / "budget.db")
    ledger.db.execute("PRAGMA synchronous=OFF")  # set-up speed only
    for day in range(400):
        ledger.put(f"filler.{day}", {"pad": "y" * 60})
    ledger.close()
    damage_page(tmp_path / "state" / "budget.db")
    daemon = Daemon(config)
    assert daemon.power.base_cap_w == 90.0
    daemon.close()


@pytest.mark.parametrize("name", ["outbox.db", "shotlog.db", "commands.db"])
def test_the_daemon_starts_on_a_damaged_store_and_names_it_in_a_critical_event(
    tmp_path: Path, name: str
) -> None:
    config = config_for(tmp_path)
    state = tmp_path / "state"
    Daemon(config).close()
    if name == "outbox.db":
        filled_outbox(state / name)
    elif name == "shotlog.db":
        filled_shotlog(state / name)
    else:
        filled_commands(state / name, Credentials(tmp_path))
    damage_page(state / name)
    daemon = Daemon(config)
    (event,) = events_named(daemon, "storage.corrupt")
    assert event["source"] == name and event["severity"] == "critical"
    assert name in event["message"] and "moved aside" in event["message"]
    assert daemon.power.governor.cap_w == 300.0  # the ledger was sound: nothing lowered
    daemon.close()


def test_the_daemon_refuses_to_start_on_unreadable_counters_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_for(tmp_path)
    state = tmp_path / "state"
    Daemon(config).close()
    filled_commands(state / "commands.db", Credentials(tmp_path))
    damage_page(state / "commands.db", root_page(state / "commands.db", "counters"))
    assert run_daemon(config) == EXIT_STATE_UNUSABLE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "commands.db" in err[0] and "Traceback" not in err[0]


def test_a_damaged_header_is_recovered_like_a_damaged_page(tmp_path: Path) -> None:
    path = tmp_path / "shotlog.db"
    filled_shotlog(path)
    with path.open("r+b") as file:
        file.write(b"not an sqlite file at all")
    log = ShotLog(path)
    assert log.recovery is not None and "not a database" in log.recovery.detail
    log.close()


def test_a_recovered_command_store_keeps_its_revocations_and_cancellations(
    tmp_path: Path,
) -> None:
    credentials = Credentials(tmp_path)
    path = tmp_path / "commands.db"
    filled_commands(path, credentials)
    commands, _ = intake(path, credentials.keyring)
    with commands.db:
        commands.db.execute("INSERT INTO revoked_keys VALUES ('director-1', 1.0, 'fc-1')")
        commands.db.execute("INSERT INTO cancelled VALUES ('abcdefgh', 'fc-1', 1, 9e12)")
    commands.close()
    damage_page(path)
    commands, _ = intake(path, credentials.keyring)
    assert commands.recovery is not None
    assert "director-1" in commands.revoked  # a revoked key never comes back with a new file
    assert scalar(path, "SELECT count(*) FROM cancelled WHERE id = 'abcdefgh'") == 1
