"""`cupola export`: OpenTimelineIO writes the day as ALE, EDL, OTIO and CSV, and reads the ALE
and EDL it wrote back the same; pycmx, an independent parser, reads the EDL too."""

from __future__ import annotations

import csv
import datetime
import io
import subprocess
import sys
from pathlib import Path

import opentimelineio as otio
import pycmx
import pytest

from firmware_host.workflow.shotlog import ShotLog
from tools.export import ExportError, export

DAY = datetime.date(2026, 11, 27)
NOON = datetime.datetime(2026, 11, 27, 12, tzinfo=datetime.UTC).timestamp()
TC_10H = 10 * 3600 * 25
SETTINGS = {"width": 3840, "height": 2160, "codec": "PRORES_422_HQ", "iso": 800,
            "shutter_decideg": 1800, "white_balance_k": 5600}  # fmt: skip


@pytest.fixture
def shotlog(tmp_path: Path) -> Path:
    """Two takes on two cameras, the second circled and noted, and a take of another day."""
    log = ShotLog(tmp_path / "shotlog.db")
    for take, start, frames in ((1, TC_10H, 100), (2, TC_10H + 500, 250)):
        take_id = log.take_started(scene="12A", take=take, roll="A001", start_frame=start,
                                   frame_rate=25.0, clips={"cam-a": take, "cam-b": take},
                                   settings={"cam-a": SETTINGS, "cam-b": SETTINGS})  # fmt: skip
        for camera in ("cam-a", "cam-b"):
            log.clip_closed(camera, take, start + frames, frames, frames * 3_500_000)
        log.db.execute("UPDATE takes SET started_at = ? WHERE take_id = ?", (NOON + take, take_id))
    log.annotate(2, circled=True, note="best performance")
    log.annotate(2, circled=None, note="boom in frame at the end")
    other = log.take_started(scene="13", take=1, roll="A002", start_frame=TC_10H, frame_rate=25.0,
                             clips={"cam-a": 9}, settings={})  # fmt: skip
    log.clip_closed("cam-a", 9, TC_10H + 50, 50, 1)
    log.db.execute("UPDATE takes SET started_at = ? WHERE take_id = ?", (NOON + 86400, other))
    log.close()
    return tmp_path / "shotlog.db"


def test_ale_round_trips_through_opentimelineio(shotlog: Path) -> None:
    text, clips = export(shotlog, DAY, "ale", None, None)
    assert clips == 4
    assert text.startswith("Heading\nFIELD_DELIM\tTABS\nFPS\t25")
    read = otio.adapters.read_from_string(text, "ale")
    rows = list(read.find_clips())
    assert [c.name for c in rows] == ["A001C001.mov", "A001C001.mov", "A001C002.mov",
                                      "A001C002.mov"]  # fmt: skip
    circled = rows[2]
    assert circled.source_range.start_time.to_timecode() == "10:00:20:00"
    assert circled.source_range.duration.value == 250
    ale = circled.metadata["ALE"]
    assert ale["Scene"] == "12A" and ale["Take"] == "2" and ale["Circled"] == "yes"
    assert ale["Camera"] == "cam-a" and ale["Tape"] == "A001" and ale["ISO"] == "800"
    assert ale["Notes"] == "best performance / boom in frame at the end"
    assert ale["Shutter"] == "180" and ale["WB"] == "5600"
    assert rows[0].metadata["ALE"]["Circled"] == ""


def test_edl_round_trips_and_pycmx_reads_it(shotlog: Path) -> None:
    text, _ = export(shotlog, DAY, "edl", None, None)
    read = otio.adapters.read_from_string(text, "cmx_3600", rate=25)
    clips = list(read.find_clips())
    assert len(clips) == 4
    assert [c.source_range.start_time.to_timecode() for c in clips] == [
        "10:00:00:00", "10:00:00:00", "10:00:20:00", "10:00:20:00"]  # fmt: skip
    assert [c.source_range.duration.value for c in clips] == [100, 100, 250, 250]
    assert clips[2].metadata["cmx_3600"]["reel"] == "A001"
    parsed = pycmx.parse_cmx3600(io.StringIO(text))
    events = list(parsed.events)
    assert len(events) == 4
    edit = events[2].edits[0]
    assert edit.source == "A001" and edit.source_in == "10:00:20:00"
    assert edit.source_out == "10:00:30:00"
    assert edit.clip_name == "A001C002.mov"


def test_otio_and_csv_carry_the_same_clips(shotlog: Path) -> None:
    text, _ = export(shotlog, DAY, "otio", None, None)
    line = otio.adapters.read_from_string(text, "otio_json")
    assert line.name == "dailies 2026-11-27"
    assert [c.metadata["cupola"]["take_id"] for c in line.find_clips()] == [1, 1, 2, 2]
    table = list(csv.DictReader(io.StringIO(export(shotlog, DAY, "csv", None, None)[0])))
    assert [r["Camera"] for r in table] == ["cam-a", "cam-b", "cam-a", "cam-b"]
    assert table[3]["Start"] == "10:00:20:00" and table[3]["End"] == "10:00:30:00"
    assert table[3]["Source File"] == "cam-b/A001C002.mov" and table[3]["Circled"] == "yes"


def test_the_cli_writes_the_file_with_the_mhl_beside_it(shotlog: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    (store / "ascmhl").mkdir(parents=True)
    (store / "ascmhl" / "ascmhl_chain.xml").write_text("<chain/>")
    out = tmp_path / "out" / "day.ale"
    out.parent.mkdir()
    cli = [sys.executable, "-m", "tools.cli", "export", "--shotlog", str(shotlog)]
    run = subprocess.run(
        [*cli, "--day", "2026-11-27", "--format", "ale", "--out", str(out), "--store", str(store)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "4 clips" in run.stderr and (out.parent / "ascmhl" / "ascmhl_chain.xml").is_file()
    empty = subprocess.run([*cli, "--day", "2026-01-01", "--format", "csv"], capture_output=True,
                           text=True, check=False)  # fmt: skip
    assert empty.returncode == 65 and "no clips were shot on 2026-01-01" in empty.stderr
    bad = subprocess.run([*cli, "--day", "tomorrow", "--format", "csv"], capture_output=True,
                         text=True, check=False)  # fmt: skip
    assert bad.returncode == 64 and "Traceback" not in bad.stderr


def test_an_unreadable_shot_log_is_one_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "shotlog.db"
    junk.write_bytes(b"not sqlite" * 100)
    with pytest.raises(ExportError, match="not a readable shot log"):
        export(junk, DAY, "csv", None, None)
    with pytest.raises(ExportError, match="no such shot log"):
        export(tmp_path / "missing.db", DAY, "csv", None, None)
