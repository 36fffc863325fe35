"""The state disk refusing writes (full, I/O errors, read-only, a file found damaged while
running): noticed, said, survived.

Stores run their writes under `guard.using(path)`. A write the disk refuses becomes a
StorageFault naming the file, and the caller decides what that means for its data (the
outbox holds messages in memory, the ledger keeps unsaved entries, the command worker
answers "refused"); nothing lets the raw sqlite3 error crash a task. The first refusal
flips the guard to degraded with one critical `storage.fault` event (one more for each other
file that fails in the same episode). While degraded, its owner calls `probe` every
`probe_interval_s`: the stores write what they hold back, and when it all goes through,
`storage.recovered` says how long the disk refused writes and what was held meanwhile. A file
found damaged keeps the guard degraded until a restart checks and recovers it.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from firmware_host.events import EventBus
from firmware_host.storage import StorageError, is_damage, is_disk_fault
from protocols.messages.common import Severity

PROBE_INTERVAL_S = 0.5

# A probe writes what a store holds back and returns a short account of it ("" if nothing);
# it raises StorageFault while the disk still refuses.
Probe = Callable[[], str]


class StorageFault(StorageError):
    """The state disk refused a write; the message names the file and SQLite's reason."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path.name}: {reason}")


class StorageGuard:
    def __init__(
        self,
        bus: EventBus,
        *,
        clock: Callable[[], float] = time.monotonic,
        probe_interval_s: float = PROBE_INTERVAL_S,
    ) -> None:
        self.bus = bus
        self.clock = clock
        self.probe_interval_s = probe_interval_s
        self.faults: dict[Path, str] = {}  # this episode: file -> SQLite's reason
        self.damaged: set[Path] = set()  # files found damaged while running: until restart
        self.since: float | None = None  # when this episode began
        self.episodes = 0
        self.last_outage_s: float | None = None
        self._probes: list[Probe] = []

    @property
    def degraded(self) -> bool:
        return self.since is not None

    def add_probe(self, probe: Probe) -> None:
        self._probes.append(probe)

    @contextlib.contextmanager
    def using(self, path: Path, connection: sqlite3.Connection | None = None) -> Iterator[None]:
        """Run storage work (a write, mostly); a disk fault becomes StorageFault(path) and
        degrades the guard.

        A transaction the fault left open on `connection` is rolled back first, so the event
        the fault raises can itself be queued through the same store.
        """
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            if not is_disk_fault(exc):
                raise
            if connection is not None and connection.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    connection.rollback()
            self.fault(path, str(exc), damaged=is_damage(exc))
            raise StorageFault(path, str(exc)) from exc

    def fault(self, path: Path, reason: str, *, damaged: bool = False) -> None:
        if path in self.faults:
            return
        first = not self.degraded
        self.faults[path] = reason
        if damaged:
            self.damaged.add(path)
        if first:
            self.since = self.clock()
            self.episodes += 1
        action = (
            "restart the daemon: it checks the file and recovers from it at start-up"
            if damaged
            else "free space in the state directory"
        )
        # State first, event second: the event's own write may fail and come back here.
        self.bus.emit(
            "storage.fault", Severity.CRITICAL,
            f"state disk refused a write to {path.name} ({reason}): messages for the ground "
            f"are held in memory, commands that must be stored are refused, devices keep "
            f"running; {action}",
            source=path.name, file=str(path), reason=reason, damaged=damaged,
        )  # fmt: skip

    def probe(self) -> bool:
        """While degraded: write what the stores hold back; True once the disk took it all."""
        if not self.degraded:
            return True
        accounts = []
        try:
            for probe in self._probes:
                if account := probe():
                    accounts.append(account)
        except StorageFault:
            return False
        if self.damaged:
            return False  # what was held is written; the damaged file stays so until restart
        assert self.since is not None
        outage = self.clock() - self.since
        files = ", ".join(sorted(path.name for path in self.faults))
        self.since = None
        self.faults.clear()
        self.last_outage_s = outage
        detail = f": {'; '.join(accounts)}" if accounts else ""
        self.bus.emit(
            "storage.recovered", Severity.WARNING,
            f"state disk takes writes again after {outage:.1f} s ({files}){detail}",
            outage_s=round(outage, 3), files=files,
        )  # fmt: skip
        return True
