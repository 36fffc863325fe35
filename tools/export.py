"""`cupola export`: a day of the shot log in the editors' formats, built with OpenTimelineIO.

One timeline per day (UTC): every clip of every take started that day, in the order they
were shot, each an OTIO clip whose source range is the clip's timecode in and duration and
whose metadata carry the camera report (scene, take, circled, camera, roll, notes, settings).
ALE and CMX 3600 EDL are written by OpenTimelineIO's own adapters, `otio` is OTIO's JSON,
and `csv` lists the same columns as the ALE. With `--store`, the ASC MHL history of the
onboard copies goes alongside the export (its `ascmhl` folder copied beside the file).
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import opentimelineio as otio

from protocols.media import clip_file_name
from protocols.timecode import FrameRate, format_timecode

FORMATS = {"ale": "ale", "edl": "cmx_3600", "otio": "otio_json", "csv": None}
COLUMNS = ["Name", "Tape", "Start", "End", "Duration", "Scene", "Take", "Circled", "Camera",
           "Notes", "Codec", "Resolution", "ISO", "Shutter", "WB", "FPS",
           "Source File"]  # fmt: skip


class ExportError(Exception):
    """The shot log cannot be read, or holds nothing for that day."""


def read_day(shotlog: Path, day: datetime.date) -> list[dict[str, Any]]:
    """Every clip of the takes started on `day` (UTC), with its take's fields, oldest first."""
    if not shotlog.is_file():
        raise ExportError(f"{shotlog}: no such shot log")
    start = datetime.datetime.combine(day, datetime.time(), datetime.UTC).timestamp()
    try:
        db = sqlite3.connect(f"file:{shotlog}?mode=ro", uri=True)
        db.row_factory = sqlite3.Row
        rows = db.execute(
            "SELECT c.camera, c.clip_id, c.roll, c.timecode_in, c.frames, c.frame_rate,"
            " c.settings, t.scene, t.take, t.circled, t.notes, t.take_id"
            " FROM clips c JOIN takes t ON c.take_id = t.take_id"
            " WHERE t.started_at >= ? AND t.started_at < ? AND c.frames > 0"
            " ORDER BY t.started_at, t.take_id, c.camera",
            (start, start + 86400),
        ).fetchall()
        db.close()
    except sqlite3.Error as exc:
        raise ExportError(f"{shotlog}: not a readable shot log ({exc})") from None
    return [dict(r) for r in rows]


def _settings(row: dict[str, Any]) -> dict[str, Any]:
    try:
        settings = json.loads(row["settings"] or "{}")
    except json.JSONDecodeError:
        return {}
    return settings if isinstance(settings, dict) else {}


def timeline(rows: list[dict[str, Any]], day: datetime.date) -> otio.schema.Timeline:
    """The day's clips as one OTIO timeline (a stringout: each clip after the previous)."""
    fps = rows[0]["frame_rate"] if rows else 25.0
    rate = FrameRate.from_fps(fps)
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    for row in rows:
        name = clip_file_name(row["roll"], row["clip_id"])
        settings = _settings(row)
        shutter = settings.get("shutter_decideg")
        ale = {
            "Tape": row["roll"],
            "Scene": row["scene"],
            "Take": str(row["take"]),
            "Circled": "yes" if row["circled"] else "",
            "Camera": row["camera"],
            "Notes": " / ".join(row["notes"].splitlines()),
            "Codec": str(settings.get("codec", "")),
            "Resolution": f"{settings['width']}x{settings['height']}"
            if "width" in settings
            else "",
            "ISO": str(settings.get("iso", "")),
            "Shutter": f"{shutter / 10:g}" if isinstance(shutter, int | float) else "",
            "WB": str(settings.get("white_balance_k", "")),
            "FPS": f"{fps:g}",
        }
        clip = otio.schema.Clip(
            name=name,
            media_reference=otio.schema.ExternalReference(target_url=f"{row['camera']}/{name}"),
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(row["timecode_in"], fps),
                otio.opentime.RationalTime(row["frames"], fps),
            ),
            metadata={
                "ALE": ale,
                "cmx_3600": {"reel": row["roll"]},
                "cupola": {"take_id": row["take_id"], "clip_id": row["clip_id"],
                           "timecode_in": format_timecode(row["timecode_in"], rate),
                           "settings": settings},
            },
        )  # fmt: skip
        track.append(clip)
    result = otio.schema.Timeline(name=f"dailies {day.isoformat()}")
    result.tracks.append(track)
    result.metadata["ALE"] = {"header": {"FPS": f"{fps:g}"}, "columns": COLUMNS[5:16]}
    return result


def render(line: otio.schema.Timeline, fmt: str) -> str:
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        fps = float(line.metadata["ALE"]["header"]["FPS"])
        for clip in line.find_clips():
            span = clip.source_range
            tc = {
                "Name": clip.name,
                "Start": otio.opentime.to_timecode(span.start_time, fps),
                "End": otio.opentime.to_timecode(span.end_time_exclusive(), fps),
                "Duration": otio.opentime.to_timecode(span.duration, fps),
                "Source File": clip.media_reference.target_url,
            }
            writer.writerow([tc.get(c, clip.metadata["ALE"].get(c, "")) for c in COLUMNS])
        return out.getvalue()
    adapter = FORMATS[fmt]
    assert adapter is not None
    if fmt == "ale":
        fps = float(line.metadata["ALE"]["header"]["FPS"])
        return str(otio.adapters.write_to_string(line, adapter, fps=fps))
    return str(otio.adapters.write_to_string(line, adapter))


def export(
    shotlog: Path, day: datetime.date, fmt: str, out: Path | None, store: Path | None
) -> tuple[str, int]:
    """The export's text (also written to `out`, with the MHL beside it) and its clip count."""
    rows = read_day(shotlog, day)
    if not rows:
        raise ExportError(f"{shotlog}: no clips were shot on {day.isoformat()}")
    text = render(timeline(rows, day), fmt)
    if out is not None:
        out.write_text(text)
        if store is not None:
            history = store / "ascmhl"
            if not history.is_dir():
                raise ExportError(f"{store}: no ASC MHL history (no ascmhl folder)")
            shutil.copytree(history, out.parent / "ascmhl", dirs_exist_ok=True)
    return text, len(rows)
