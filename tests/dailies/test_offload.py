"""Offload: copies verified by xxHash64, recorded in an ASC MHL history that the ASC's own
`ascmhl` tool accepts, re-verifies, and diffs; a bad copy retried, then failed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_host.dailies.hashing import xxh64_file
from firmware_host.dailies.index import OffloadIndex
from firmware_host.dailies.mhl import history_hashes, verify_drive
from firmware_host.dailies.offload import offload_card, pending
from tests.dailies.cards import clip, render_card

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
ASCMHL = str(Path(sys.executable).with_name("ascmhl"))


def _ascmhl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ASCMHL, *map(str, args)], capture_output=True, text=True, check=False)


@pytest.fixture
def card(tmp_path: Path) -> Path:
    folder = tmp_path / "cards" / "cam-a"
    render_card(folder, "cam-a", [clip(1), clip(2, take=2, frames=40)])
    return folder


def test_clip_files_are_real_videos_with_their_timecode(card: Path) -> None:
    files = sorted(p.name for p in card.iterdir())
    assert files == ["A001C001.mov", "A001C002.mov"]
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=nb_frames:stream_tags=timecode",
         "-of", "csv=p=0", str(card / "A001C002.mov")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "10:00:00:00" in probe.stdout
    assert "40" in probe.stdout  # 40 frames: the clip's length


def test_offload_verifies_every_copy_and_ascmhl_accepts_the_history(
    card: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    index = OffloadIndex(tmp_path / "offload.db")
    lines: list[dict[str, object]] = []
    result = offload_card(card, "cam-a", store, index, report=lines.append)
    assert result.verified == ["A001C001.mov", "A001C002.mov"] and not result.failed
    for name in result.verified:
        assert xxh64_file(store / "cam-a" / name) == xxh64_file(card / name)
        assert index.is_current("cam-a", card / name)
    assert history_hashes(store) == {f"cam-a/{n}": xxh64_file(card / n) for n in result.verified}
    assert lines[-1]["kind"] == "verified" and any(x["kind"] == "progress" for x in lines)
    assert pending(card, "cam-a", index) == []  # nothing twice
    # The reference implementation re-hashes every file already in the history, then adds a
    # generation of its own: it succeeds, and marks them verified.
    run = _ascmhl("create", store, "-h", "xxh64")
    assert run.returncode == 0, run.stdout + run.stderr
    assert _ascmhl("diff", store).returncode == 0  # nothing missing, nothing extra
    assert len(list((store / "ascmhl").glob("*.mhl"))) == 2
    # A later offload adds a third generation on top of ascmhl's own.
    render_card(card, "cam-a", [clip(3, take=3)])
    assert offload_card(card, "cam-a", store, index).verified == ["A001C003.mov"]
    run = _ascmhl("create", store, "-h", "xxh64")
    assert run.returncode == 0, run.stdout + run.stderr


def test_ascmhl_finds_a_changed_missing_or_extra_file_in_what_cupola_recorded(
    card: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    offload_card(card, "cam-a", store, OffloadIndex(tmp_path / "offload.db"))
    copy = store / "cam-a" / "A001C001.mov"
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))
    run = _ascmhl("create", store, "-h", "xxh64")
    assert run.returncode != 0 and "A001C001.mov" in run.stdout + run.stderr
    shutil.rmtree(store / "ascmhl")  # a fresh history, then a file goes and one appears
    offload_card(card, "cam-a", store, OffloadIndex(tmp_path / "again.db"))
    (store / "cam-a" / "A001C002.mov").unlink()
    (store / "cam-a" / "stray.mov").write_bytes(b"not footage")
    run = _ascmhl("diff", store)
    assert run.returncode != 0
    assert "A001C002.mov" in run.stdout + run.stderr and "stray.mov" in run.stdout + run.stderr


def test_a_bad_copy_is_made_again_then_reported_failed(card: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    index = OffloadIndex(tmp_path / "offload.db")
    attempts: list[str] = []

    def flaky(source: Path, target: Path, progress: object) -> str:
        digest = xxh64_file(source)
        data = bytearray(source.read_bytes())
        if source.name == "A001C002.mov" or not attempts:  # C001's first copy; C002 always
            data[100] ^= 0xFF
        attempts.append(source.name)
        target.write_bytes(bytes(data))
        return digest

    lines: list[dict[str, object]] = []
    result = offload_card(card, "cam-a", store, index, report=lines.append, copier=flaky)
    assert result.verified == ["A001C001.mov"]
    assert set(result.failed) == {"A001C002.mov"}
    assert [x["name"] for x in lines if x["kind"] == "retry"] == ["A001C001.mov", "A001C002.mov"]
    assert not (store / "cam-a" / "A001C002.mov").exists()  # no bad copy left as footage
    assert not index.is_current("cam-a", card / "A001C002.mov")
    assert set(history_hashes(store)) == {"cam-a/A001C001.mov"}


def test_verify_lists_every_missing_extra_or_changed_file(card: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    render_card(tmp_path / "cards" / "cam-b", "cam-b", [clip(1, roll="B001")])
    offload_card(card, "cam-a", store, OffloadIndex(tmp_path / "a.db"))
    offload_card(tmp_path / "cards" / "cam-b", "cam-b", store, OffloadIndex(tmp_path / "b.db"))
    drive = tmp_path / "drive"
    shutil.copytree(store, drive)
    assert verify_drive(drive, store).ok
    cli = [sys.executable, "-m", "tools.cli", "verify"]
    assert subprocess.run([*cli, str(drive)], capture_output=True, check=False).returncode == 0
    (drive / "cam-a" / "A001C001.mov").unlink()
    (drive / "cam-b" / "B001C001.mov").write_bytes(b"changed")
    (drive / "cam-b" / "extra.mov").write_bytes(b"extra")
    report = verify_drive(drive, store)
    assert report.missing == ["cam-a/A001C001.mov"]
    assert report.changed == ["cam-b/B001C001.mov"]
    assert report.extra == ["cam-b/extra.mov"]
    run = subprocess.run([*cli, str(drive), "--history", str(store)], capture_output=True,
                         text=True, check=False)  # fmt: skip
    assert run.returncode == 1
    assert "missing  cam-a/A001C001.mov" in run.stdout
    assert "changed  cam-b/B001C001.mov" in run.stdout
    no_history = subprocess.run([*cli, str(tmp_path / "cards")], capture_output=True, text=True,
                                check=False)  # fmt: skip
    assert no_history.returncode == 66 and "no ASC MHL history" in no_history.stderr
    assert "Traceback" not in no_history.stderr


def test_a_card_file_changed_after_its_offload_never_overwrites_the_copy(
    card: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    index = OffloadIndex(tmp_path / "offload.db")
    offload_card(card, "cam-a", store, index)
    copy = (store / "cam-a" / "A001C001.mov").read_bytes()
    (card / "A001C001.mov").write_bytes(b"a different file under the same name")
    result = offload_card(card, "cam-a", store, index)
    assert "changed" in result.failed["A001C001.mov"]
    assert (store / "cam-a" / "A001C001.mov").read_bytes() == copy
    assert not index.is_current("cam-a", card / "A001C001.mov")
    (card / "A001C001.mov").write_bytes(copy)  # the same content again: current, not copied
    assert offload_card(card, "cam-a", store, index).verified == ["A001C001.mov"]
    assert index.is_current("cam-a", card / "A001C001.mov")
    assert len(list((store / "ascmhl").glob("*.mhl"))) == 1


def test_cupola_offload_prints_its_steps_and_refuses_bad_input(card: Path, tmp_path: Path) -> None:
    cli = [sys.executable, "-m", "tools.cli", "offload", "--camera", "cam-a",
           "--index", str(tmp_path / "offload.db")]  # fmt: skip
    run = subprocess.run([*cli, "--card", str(card), "--store", str(tmp_path / "store")],
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [x["name"] for x in lines if x["kind"] == "verified"] == ["A001C001.mov",
                                                                     "A001C002.mov"]  # fmt: skip
    assert lines[-1]["kind"] == "done" and lines[-1]["verified"] == 2
    missing = subprocess.run([*cli, "--card", str(tmp_path / "nope"), "--store", str(tmp_path)],
                             capture_output=True, text=True, check=False)  # fmt: skip
    assert missing.returncode == 66 and "no such card folder" in missing.stderr
    inside = subprocess.run([*cli, "--card", str(card), "--store", str(card / "x")],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert inside.returncode == 64 and "Traceback" not in inside.stderr
