"""Budget state that must outlive the process, in SQLite next to the shot log.

A cap the ground cut, a planned station power-down, the media used at the start of the day
and the downlink already spent today are facts about the shoot, not about this process: a
daemon restarted by systemd in the middle of a 120 W power-down must not come back at 300 W,
nor give the day's downlink allocation out a second time. The media on each card as the day
began is written within half a second (`put_soon`): a crash before then loses only that, and
the restarted daemon reads it from the cards again.

If the file is damaged it is moved aside and the ledger starts empty (`recovery` says so):
the daemon then starts at the most conservative cap it knows (`conservative_cap`), never at
the configured one as if the ground had never lowered it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from typing import Any

from firmware_host.config import PowerConfig
from firmware_host.events import EventBus
from firmware_host.storage import open_or_recover
from firmware_host.storage_guard import StorageFault, StorageGuard

log = logging.getLogger(__name__)

MIGRATIONS = ["CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, value TEXT NOT NULL);"]

# The lowest cap the reference allocation plans for: "the cap may drop to 120 W for up to an
# hour during a station event" (shared/reference/iss-budgets.md).
STATION_EVENT_CAP_W = 120.0
# How long `put_soon` may hold a value before it is written: what many updates change at once
# (each camera's card as the day began, while 32 cameras come online) goes in one transaction.
COALESCE_S = 0.5


def conservative_cap(power: PowerConfig) -> float:
    """The lowest cap known without the ledger: configured, planned, or a station event's."""
    return min(power.cap_w, STATION_EVENT_CAP_W, *(change.cap_w for change in power.timeline))


class BudgetLedger:
    """A small durable key-value store: every `put` is committed before it returns (a
    `put_soon` within COALESCE_S), or, while the state disk refuses writes, kept in memory
    (and read back from there) until the storage guard's probe writes it: a cap cut on a full
    disk still holds."""

    def __init__(self, path: Path, guard: StorageGuard | None = None) -> None:
        self.path = path
        self.db, self.recovery = open_or_recover(path, MIGRATIONS)
        self.guard = guard if guard is not None else StorageGuard(EventBus())
        self.guard.add_probe(self.flush)
        self._unsaved: dict[str, str] = {}
        self._soon: asyncio.TimerHandle | None = None  # put_soon's write, once scheduled
        self._soon_loop: asyncio.AbstractEventLoop | None = None  # the loop it is scheduled on

    def get(self, key: str) -> Any:
        if key in self._unsaved:
            return json.loads(self._unsaved[key])
        row = self.db.execute("SELECT value FROM entries WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, value: Any) -> None:
        self._unsaved[key] = json.dumps(value)
        try:
            self.flush()
        except StorageFault:
            return  # kept in memory; the guard has said so and will write it

    def put_soon(self, key: str, value: Any) -> None:
        """As `put`, but written within COALESCE_S instead of before returning (at once
        outside an event loop), with whatever else is put meanwhile: each of its synced writes
        held the event loop, 32 of them while 64 devices came online. Only for a value whose
        last change a crash may lose: the restart takes it from the device again. `get` sees
        it at once."""
        self._unsaved[key] = json.dumps(value)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if self._soon is not None and self._soon_loop is loop:
            return  # the write scheduled takes this along
        self._cancel_soon()  # one left on a loop that has ended would never run
        if loop is None:
            self._write_held()
        else:
            self._soon, self._soon_loop = loop.call_later(COALESCE_S, self._write_held), loop

    def _cancel_soon(self) -> None:
        if self._soon is not None:
            self._soon.cancel()
        self._soon = self._soon_loop = None

    def _write_held(self) -> None:
        self._soon = self._soon_loop = None
        with contextlib.suppress(StorageFault):  # kept in memory; the guard will write it
            self.flush()

    def flush(self) -> str:
        """Write the entries not yet on disk (also the storage guard's probe)."""
        if not self._unsaved:
            return ""
        entries = dict(self._unsaved)
        with self.guard.using(self.path, self.db), self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany(
                "INSERT OR REPLACE INTO entries (key, value) VALUES (?, ?)", entries.items()
            )
        for key, value in entries.items():
            if self._unsaved.get(key) == value:
                del self._unsaved[key]
        return f"{len(entries)} budget entries held in memory written to {self.path.name}"

    def close(self) -> None:
        """Close, writing entries held in memory first if the disk takes them by now."""
        self._cancel_soon()
        with contextlib.suppress(StorageFault):  # the guard has said so already
            self.flush()
        if self._unsaved:
            log.critical(
                "%s: %d budget entries held in memory are lost: the disk still refuses writes",
                self.path, len(self._unsaved),
            )  # fmt: skip
        self.db.close()
