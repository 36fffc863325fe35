"""A command's result as a person reads it: the outcome first, then the result indented.

`cupola cmd` prints this by default (`--json` keeps the raw result for scripts). The shot
log's frame counts are shown as HH:MM:SS:FF timecodes at the take's own rate, as on a slate.
"""

from __future__ import annotations

from typing import Any

from protocols.timecode import FrameRate, format_timecode


def render_result(body: dict[str, Any]) -> str:
    """`ok: record`, then what the command returned, one setting per line."""
    name = body.get("name") or "(unparsed command)"
    head = f"{body.get('status', '?')}: {name}"
    if body.get("executed"):
        head += f" (executed {body['executed']})"
    if body.get("duplicate"):
        head += " (an earlier result: this command id was sent before)"
    if body.get("reason"):
        head += f": {body['reason']}"
    result = body.get("result") or {}
    takes = result.get("takes") if name == "shotlog.query" else None
    lines = _takes(takes) if isinstance(takes, list) else _tree(result, "  ")
    return "\n".join([head, *lines])


def _tree(value: Any, indent: str) -> list[str]:
    lines = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines += [f"{indent}{key}:", *_tree(item, indent + "  ")]
            else:
                lines.append(f"{indent}{key}: {_scalar(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list) and item:
                nested = _tree(item, indent + "  ")
                lines += [f"{indent}- {nested[0].lstrip()}", *nested[1:]]
            else:
                lines.append(f"{indent}- {_scalar(item)}")
    return lines


def _scalar(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return "none"
    return str(value)


def timecode(frames: int | None, fps: float) -> str:
    """HH:MM:SS:FF at `fps`; the bare frame count if the rate is not one timecode knows."""
    if frames is None:
        return "-"
    try:
        return format_timecode(frames, FrameRate.from_fps(fps))
    except ValueError:
        return f"frame {frames}"


def _takes(takes: list[dict[str, Any]]) -> list[str]:
    if not takes:
        return ["  no takes"]
    lines = [f"  {len(takes)} take{'' if len(takes) == 1 else 's'}, newest first"]
    for take in takes:
        fps = float(take.get("frame_rate") or 0)
        marks = [take.get("status", "?")]
        if take.get("circled"):
            marks.append("circled")
        lines.append(
            f"  #{take.get('take_id')}  scene {take.get('scene')} take {take.get('take')}  "
            f"roll {take.get('roll')}  {timecode(take.get('start_frame'), fps)} "
            f"@ {fps:g} fps  {', '.join(marks)}"
        )
        if take.get("notes"):
            lines.append(f"      note: {take['notes']}")
        for clip in take.get("clips", []):
            tc_in = timecode(clip.get("timecode_in"), fps)
            tc_out = timecode(clip.get("timecode_out"), fps)
            frames = clip.get("frames")
            length = f"{frames} frames" if frames is not None else "rolling"
            lines.append(
                f"      {clip.get('camera')}  clip {clip.get('clip_id')}  "
                f"{tc_in} - {tc_out}  {length}  {clip.get('state')}"
            )
    return lines
