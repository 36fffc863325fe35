"""The chain of custody: an ASC MHL history beside the onboard copies, written with the ASC's
own `ascmhl` package, and a drive checked against it when it comes home.

Each offload adds one generation (`ascmhl/NNNN_<folder>_<date>.mhl` and the chain file) with
an xxh64 hash per file: `original` the first time, `verified` when a later generation hashed
it again and found the same, `failed` when not (ascmhl decides, from the history).
"""

from __future__ import annotations

import datetime
import fcntl
import platform
from dataclasses import dataclass, field
from pathlib import Path

from ascmhl.__version__ import ascmhl_tool_name, ascmhl_tool_version
from ascmhl.generator import MHLGenerationCreationSession
from ascmhl.hashlist import MHLCreatorInfo, MHLProcess, MHLProcessInfo, MHLTool
from ascmhl.history import MHLHistory
from ascmhl.utils import datetime_now_isostring

from firmware_host.dailies.hashing import xxh64_file

HASH_FORMAT = "xxh64"
MHL_FOLDER = "ascmhl"


@dataclass(frozen=True)
class HashedFile:
    path: Path  # absolute, under the history's root
    size: int
    modified: float  # unix time
    xxh64: str


def record_generation(
    root: Path, files: list[HashedFile], *, comment: str, location: str = "ISS"
) -> list[Path]:
    """Add one generation for `files` (process `transfer`: they were copied here); returns
    the files whose hash disagrees with the history (recorded as `failed`). One writer at a
    time (offload workers and the proxy maker share the history): a lock file beside the
    root (inside it, ascmhl would count it as footage)."""
    root.mkdir(parents=True, exist_ok=True)
    with (root.parent / f".{root.name}.mhl-lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _record(root, files, comment=comment, location=location)


def _record(root: Path, files: list[HashedFile], *, comment: str, location: str) -> list[Path]:
    history = MHLHistory.load_from_path(str(root))
    session = MHLGenerationCreationSession(history)
    failed = []
    for entry in files:
        modified = datetime.datetime.fromtimestamp(entry.modified)
        if not session.append_file_hash(
            str(entry.path), entry.size, modified, HASH_FORMAT, entry.xxh64,
            hash_date=datetime.datetime.now(),
        ):  # fmt: skip
            failed.append(entry.path)
    creator = MHLCreatorInfo()
    creator.tool = MHLTool(ascmhl_tool_name, ascmhl_tool_version)
    creator.creation_date = datetime_now_isostring()
    creator.host_name = platform.node()
    creator.location = location
    creator.comment = comment
    process = MHLProcessInfo()
    process.process = MHLProcess("transfer")
    session.commit(creator, process)
    return failed


def history_hashes(root: Path) -> dict[str, str]:
    """Every file (not folder) the history at `root` records, relative to it: the xxh64 of
    its first generation (the original)."""
    history = MHLHistory.load_from_path(str(root))
    hashes: dict[str, str] = {}
    for hash_list in history.hash_lists:
        for media_hash in hash_list.media_hashes:
            if media_hash.is_directory or media_hash.path in hashes:
                continue
            for entry in media_hash.hash_entries:
                if entry.hash_format == HASH_FORMAT:
                    hashes[media_hash.path] = entry.hash_string
                    break
    return hashes


def has_history(root: Path) -> bool:
    return (root / MHL_FOLDER).is_dir()


@dataclass
class DriveReport:
    checked: int = 0
    missing: list[str] = field(default_factory=list)  # in the history, not on the drive
    extra: list[str] = field(default_factory=list)  # on the drive, not in the history
    changed: list[str] = field(default_factory=list)  # on both, hashes differ

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.changed)


def verify_drive(drive: Path, history_root: Path) -> DriveReport:
    """Hash every file on `drive` and compare with the history at `history_root` (the
    onboard history, or the copy of it the drive carries)."""
    expected = history_hashes(history_root)
    on_drive = {
        str(path.relative_to(drive))
        for path in drive.rglob("*")
        if path.is_file() and MHL_FOLDER not in path.relative_to(drive).parts[:1]
    }
    report = DriveReport()
    report.missing = sorted(set(expected) - on_drive)
    report.extra = sorted(on_drive - set(expected))
    for relative in sorted(on_drive & set(expected)):
        report.checked += 1
        if xxh64_file(drive / relative) != expected[relative]:
            report.changed.append(relative)
    return report
