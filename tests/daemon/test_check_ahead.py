"""The outbox checked on another thread while the daemon imports: both sides. A file that
passed and is unchanged opens without a second check and loses nothing; a file damaged,
written or replaced after its check, or left with a crash's WAL, is checked at the open as
before, and damage is still found and recovered from."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from firmware_host.check_ahead import CheckAhead
from firmware_host.daemon import Daemon
from firmware_host.groundlink.outbox import Outbox
from tests.daemon.test_storage_integrity import config_for, events_named, filled_outbox
from tests.storage_damage import damage_page


def _messages(outbox: Outbox) -> int:
    return int(outbox.backlog()["messages"])


def test_a_sound_outbox_checked_ahead_opens_unchecked_with_every_message(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    filled_outbox(path)
    with CheckAhead([path]) as ahead:
        assert ahead.passed(path)
        outbox = Outbox(path, max_bytes=10**9, checked=True)
    assert outbox.recovery is None and _messages(outbox) == 300
    outbox.close()


def test_nothing_to_check_starts_no_thread_and_passes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unguarded state directory checks nothing ahead: no thread, and every file is
    checked at its open."""
    path = tmp_path / "outbox.db"
    filled_outbox(path)
    started: list[str] = []
    start = threading.Thread.start

    def counted(thread: threading.Thread) -> None:
        started.append(thread.name)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", counted)
    with CheckAhead([]) as ahead:
        assert not ahead.passed(path)
    assert "check-ahead" not in started


def test_a_relative_path_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    filled_outbox(tmp_path / "outbox.db")
    monkeypatch.chdir(tmp_path)
    with CheckAhead([Path("outbox.db")]) as ahead:
        assert ahead.passed(Path("outbox.db"))


def test_damage_after_the_check_is_still_found_at_the_open(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    filled_outbox(path)
    with CheckAhead([path]) as ahead:
        pass  # the check is over
    damage_page(path)
    assert not ahead.passed(path)
    outbox = Outbox(path, max_bytes=10**9, checked=ahead.passed(path))
    assert outbox.recovery is not None and outbox.recovery.moved_to.exists()
    outbox.close()


def test_a_damaged_file_does_not_pass_and_is_recovered_at_the_open(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    filled_outbox(path)
    damage_page(path)
    with CheckAhead([path]) as ahead:
        assert not ahead.passed(path)
    assert Outbox(path, max_bytes=10**9, checked=ahead.passed(path)).recovery is not None


def test_a_write_or_a_replacement_after_the_check_does_not_pass(tmp_path: Path) -> None:
    written, replaced = tmp_path / "written.db", tmp_path / "replaced.db"
    filled_outbox(written)
    filled_outbox(replaced)
    with CheckAhead([written, replaced]) as ahead:
        pass
    outbox = Outbox(written, max_bytes=10**9)
    outbox.append("event", {"name": "one more"})
    outbox.close()
    shutil.copy(written, tmp_path / "copy.db")
    (tmp_path / "copy.db").replace(replaced)
    assert not ahead.passed(written) and not ahead.passed(replaced)


def test_a_wal_left_by_a_crash_is_left_to_the_open_and_nothing_is_lost(tmp_path: Path) -> None:
    alive, crashed = tmp_path / "alive.db", tmp_path / "outbox.db"
    filled_outbox(alive)
    outbox = Outbox(alive, max_bytes=10**9)
    outbox.append("event", {"name": "in the wal only"})
    for suffix in ("", "-wal"):  # the files as a kill at this instant leaves them
        shutil.copy(f"{alive}{suffix}", f"{crashed}{suffix}")
    outbox.close()
    wal = crashed.with_name("outbox.db-wal")
    as_left = (crashed.read_bytes(), wal.read_bytes())
    with CheckAhead([crashed]) as ahead:
        assert not ahead.passed(crashed)
    assert (crashed.read_bytes(), wal.read_bytes()) == as_left  # untouched: the open replays it
    reopened = Outbox(crashed, max_bytes=10**9, checked=ahead.passed(crashed))
    assert reopened.recovery is None and _messages(reopened) == 301
    reopened.close()


def test_whatever_fails_in_the_thread_is_not_passed_and_prints_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unhandled: list[object] = []
    monkeypatch.setattr(threading, "excepthook", unhandled.append)
    odd = tmp_path / "out\x00box.db"  # no system call takes it
    with CheckAhead([odd, tmp_path / "missing.db"]) as ahead:
        assert not ahead.passed(odd)
    assert unhandled == []


def test_a_missing_file_is_not_created_by_the_check_and_does_not_pass(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    with CheckAhead([path]) as ahead:
        assert not ahead.passed(path)
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_not_a_database_does_not_pass(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    path.write_bytes(b"not a database at all" * 100)
    with CheckAhead([path]) as ahead:
        assert not ahead.passed(path)


def test_the_daemon_built_after_a_check_ahead_still_names_damage_done_after_it(
    tmp_path: Path,
) -> None:
    config = config_for(tmp_path)
    state = tmp_path / "state"
    Daemon(config).close()
    filled_outbox(state / "outbox.db")
    with CheckAhead([state / "outbox.db"]) as ahead:
        pass
    damage_page(state / "outbox.db")
    daemon = Daemon(config, checked_ahead=ahead)
    (event,) = events_named(daemon, "storage.corrupt")
    assert event["source"] == "outbox.db"
    daemon.close()


def test_the_daemon_built_after_a_passed_check_ahead_keeps_its_backlog(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    state = tmp_path / "state"
    Daemon(config).close()
    filled_outbox(state / "outbox.db")
    with CheckAhead([state / "outbox.db"]) as ahead:
        assert ahead.passed(state / "outbox.db")
    daemon = Daemon(config, checked_ahead=ahead)
    assert daemon.outbox.recovery is None and _messages(daemon.outbox) >= 300
    daemon.close()
