"""How the view reads as text: device rows, power, data and node lines.

Shared by the terminal UI and the plain summary (no terminal), so both say the same thing
in the same words. Every function takes `now` and returns plain strings with a style name.
"""

from __future__ import annotations

import datetime
from typing import Any, NamedTuple

from protocols.timecode import FrameRate
from tools.monitor.view import NodeView

DEVICE_COLUMNS = (
    "device", "kind", "state", "timecode", "scene/take", "media used", "time left",
    "temp", "draw", "link", "age",
)  # fmt: skip
# The widest a free-text cell may be: an offline reason or a fault list is the device's
# news, but it must not push every other column off the screen (the event log has it whole).
STATE_WIDTH = 32
NAME_WIDTH = 16
UNREADABLE = (TypeError, ValueError, AttributeError, KeyError)  # a body not as SPEC.md has it


class Cell(NamedTuple):  # a tuple: made and compared hundreds of times a redraw
    text: str
    style: str = ""  # a Rich style: "", "bold red", "yellow", "dim", ...


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def clock(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%H:%M:%S")


def gigabytes(value: float) -> str:
    return f"{value / 1e9:,.1f} GB" if value >= 1e8 else f"{value / 1e6:,.0f} MB"


def clip(text: str, width: int) -> str:
    """At most `width` characters; a longer text ends in an ellipsis."""
    return text if len(text) <= width else text[: width - 1] + "…"


NOT_REPORTED = "not reported"  # real gear that does not measure it (snapshot `not_reported`)


def device_row(view: NodeView, name: str, now: float) -> list[Cell]:
    """One device's row; a status not as SPEC.md has it says so rather than stop the screen."""
    try:
        return _device_row(view, name, now)
    except UNREADABLE:
        cells = [Cell("")] * len(DEVICE_COLUMNS)
        cells[0] = Cell(clip(name, NAME_WIDTH), "bold")
        cells[1] = Cell(str(view.devices[name].get("kind", "?")))
        cells[2] = Cell("status unreadable", "bold yellow")
        return cells


def _device_row(view: NodeView, name: str, now: float) -> list[Cell]:
    snap = view.devices[name]
    status: dict[str, Any] = snap.get("status") or {}
    kind = str(snap.get("kind", "?"))
    stale = view.stale(name, now)
    age = view.age(name, now)
    age_cell = Cell(duration(age) + (" STALE" if stale else ""), "bold yellow" if stale else "")
    if not snap.get("online"):
        state = Cell(f"OFFLINE: {snap.get('offline_reason') or 'no reason given'}", "bold red")
    else:
        state = _state(kind, status)
    state = Cell(clip(state.text, STATE_WIDTH), state.style)
    take = view.latest_take(name) if kind == "camera" else None
    scene_take = f"{take.scene}/{take.take}" if take is not None else ""
    if take is not None and take.rolling:
        scene_take += " REC"
    missing = _not_reported(snap)
    media, left = _media(view, name, status) if kind == "camera" else (Cell(""), Cell(""))
    if media.text and "media_used_bytes" in missing:
        media = Cell(f"~{media.text} est.", "dim")  # bitrate x recorded time
    temp = status.get("temperature_cdeg")
    draw = status.get("draw_mw")
    if kind == "pdu" and "total_power_mw" in status:
        draw = status["total_power_mw"]
    temp_cell = Cell("" if temp is None else f"{temp / 100:.1f} °C")
    draw_cell = Cell("" if draw is None else f"{draw / 1000:.1f} W")
    if "temperature_cdeg" in missing:
        temp_cell = Cell(NOT_REPORTED, "dim")
    if "draw_mw" in missing and kind != "pdu":
        draw_cell = Cell(NOT_REPORTED, "dim")
    return [
        Cell(clip(name, NAME_WIDTH), "bold"),
        Cell(kind),
        state,
        Cell(_timecode(snap, status)),
        Cell(scene_take, "bold red" if "REC" in scene_take else ""),
        media,
        left,
        temp_cell,
        draw_cell,
        _link(snap),
        age_cell,
    ]


def _not_reported(snap: dict[str, Any]) -> set[str]:
    """Status fields real gear does not measure (a node's `not_reported` list, if well formed)."""
    listed = snap.get("not_reported")
    return {f for f in listed if isinstance(f, str)} if isinstance(listed, list) else set()


def _state(kind: str, status: dict[str, Any]) -> Cell:
    if not status:
        return Cell("no status yet", "dim")
    if kind == "camera":
        state = str(status.get("state", "?"))
        error = status.get("error")
        text = state + (f" ({error})" if error and error != "none" else "")
        return Cell(text, "bold red" if state == "recording" else "")
    if kind == "light":
        if not status.get("on"):
            return Cell("off", "dim")
        pct = status.get("intensity_permille", 0) / 10
        faults = status.get("faults") or []
        text = f"on {pct:.1f} % {status.get('cct_k', '')} K"
        return Cell(text + (f" faults: {', '.join(faults)}" if faults else ""),
                    "bold yellow" if faults else "")  # fmt: skip
    volts = status.get("bus_voltage_mv", 0) / 1000
    tripped = [ch["channel"] for ch in status.get("channels", []) if ch.get("tripped")]
    text = f"bus {volts:.1f} V" + (f", tripped {tripped}" if tripped else "")
    return Cell(text, "bold red" if tripped else "")


def _timecode(snap: dict[str, Any], status: dict[str, Any]) -> str:
    label = status.get("timecode_label")
    if not label:
        return ""
    offset = snap.get("timecode_offset_frames")
    return f"{label}" + (f" {offset:+.1f}f" if offset and abs(offset) >= 0.05 else "")


def _media(view: NodeView, camera: str, status: dict[str, Any]) -> tuple[Cell, Cell]:
    used = status.get("media_used_bytes")
    free = status.get("media_free_bytes")
    if used is None or free is None:
        return Cell(""), Cell("")
    share = used / (used + free) if used + free else 1.0
    style = "bold red" if share >= 0.95 else "yellow" if share >= 0.8 else ""
    card = view.telemetry.get("data", {}).get("media", {}).get(camera, {})
    left_s = card.get("record_time_left_s")
    level = card.get("today_level", "ok")
    left_style = {"red": "bold red", "yellow": "yellow"}.get(level, "")
    return (
        Cell(f"{gigabytes(used)} ({share:.0%})", style),
        Cell(duration(left_s) if left_s is not None else "", left_style),
    )


def _link(snap: dict[str, Any]) -> Cell:
    link = snap.get("link") or {}
    rate = float(link.get("error_rate") or 0.0)
    missed = int(snap.get("missed_polls") or 0)
    rtt = link.get("rtt_mean_ms")
    text = f"{rate:.1%} err" + (f" {rtt:.0f} ms" if rtt is not None else "")
    if missed:
        text += f" {missed} missed"
    style = "bold red" if rate >= 0.05 else "yellow" if rate >= 0.01 or missed else ""
    return Cell(text, style)


CODECS = {
    "prores_422_hq": "ProRes 422 HQ", "prores_422": "ProRes 422", "prores_422_lt": "ProRes 422 LT",
    "h265": "H.265", "raw": "RAW",
}  # fmt: skip


def camera_settings(settings: dict[str, Any]) -> str:
    """What a DP reads off a camera body: "ISO 800 · 180° · 5600 K · 25 fps · ProRes 422 HQ
    3840x2160" (the snapshot's CameraSettings, as SPEC.md has it on the wire)."""
    rate = str(settings.get("rate", ""))
    fps = f"{FrameRate[rate.upper()].fps:g} fps" if rate.upper() in FrameRate.__members__ else rate
    codec = str(settings.get("codec", "?"))
    return " · ".join([
        f"ISO {settings.get('iso', '?')}",
        f"{float(settings.get('shutter_decideg', 0)) / 10:g}°",
        f"{settings.get('white_balance_k', '?')} K",
        fps,
        f"{CODECS.get(codec, codec)} {settings.get('width', '?')}x{settings.get('height', '?')}",
        *([f"look {settings['look']}"] if settings.get("look") else []),
    ])  # fmt: skip


def camera_lines(view: NodeView) -> list[Cell]:
    """Each camera's settings as it last reported them (dimmed while it is offline)."""
    lines = []
    for name, snap in sorted(view.devices.items()):
        settings = snap.get("camera_settings")
        if snap.get("kind") != "camera" or not settings:
            continue
        try:
            text, style = camera_settings(settings), "" if snap.get("online") else "dim"
        except UNREADABLE:
            text, style = "settings unreadable", "yellow"
        lines.append(Cell(f"{clip(name, NAME_WIDTH):<{NAME_WIDTH}} {text}", style))
    return lines


def pdu_lines(view: NodeView) -> list[Cell]:
    """Each PDU channel: the devices wired to it (their `pdu_channel`), on or off, watts."""
    pdus = sorted(n for n, snap in view.devices.items() if snap.get("kind") == "pdu")
    wired: dict[object, list[str]] = {}
    for name, snap in sorted(view.devices.items()):
        if snap.get("pdu_channel") is not None:
            wired.setdefault(snap["pdu_channel"], []).append(name)
    lines = []
    for pdu in pdus:
        if len(pdus) > 1:
            lines.append(Cell(pdu, "bold"))
        channels = (view.devices[pdu].get("status") or {}).get("channels")
        if not channels or not isinstance(channels, list):
            lines.append(Cell(f"{pdu}: no channels reported yet", "dim"))
            continue
        for channel in channels:
            try:
                lines.append(_channel_line(channel, wired))
            except UNREADABLE:
                lines.append(Cell(f"{pdu}: a channel unreadable", "yellow"))
    return lines


def _channel_line(channel: dict[str, Any], wired: dict[object, list[str]]) -> Cell:
    number = int(channel.get("channel", 0))
    names = clip(",".join(wired.get(number, [])) or "-", 11)
    if channel.get("tripped"):
        state, style = "TRIP", "bold red"
    elif channel.get("on"):
        state, style = "on", ""
    else:
        state, style = "off", "dim"
    if channel.get("power_mw") is None:  # a feed meter: no channel is measured on its own
        return Cell(f"{number:>2} {names:<11} {state:<4}   {NOT_REPORTED}", style or "dim")
    watts = float(channel["power_mw"]) / 1000
    return Cell(f"{number:>2} {names:<11} {state:<4} {watts:>6.1f} W", style)


def power_lines(view: NodeView, now: float) -> list[Cell]:
    power = view.power
    if not power:
        return [Cell("no power figures yet", "dim")]
    cap = float(power.get("cap_w", 0.0))
    draw, basis = float(power.get("draw_w", 0.0)), "node"
    pdu = any(d.get("kind") == "pdu" for d in view.devices.values())  # else samples are ours
    if pdu and view.power_samples and view.power_samples[-1][0] >= view.telemetry.get("ts", 0.0):
        draw, basis = view.power_samples[-1][1], "PDU"  # fresher than the last sample
    reserve = float(power.get("reserve_w", 0.0))
    headline = f"draw {draw:.0f} W of {cap:.0f} W cap ({basis})"
    lines = [
        Cell(headline, "bold red" if draw > cap else "bold"),
        Cell(f"reserve {reserve:.0f} W, free {max(0.0, cap - reserve - draw):.0f} W"),
    ]
    if power.get("shedding"):
        lines.append(Cell("SHEDDING LOAD", "bold red"))
    change = power.get("next_change")
    if change and change["at"] > now:  # one that has come is old news until the next sample
        lines.append(
            Cell(
                f"next: cap {change['cap_w']:.0f} W in {duration(change['at'] - now)} "
                f"({change.get('reason', '')})",
                "yellow" if change["cap_w"] < cap else "",
            )
        )
    else:
        lines.append(Cell("no cap change planned", "dim"))
    return lines


def dailies_lines(dailies: dict[str, Any]) -> list[Cell]:
    """Each card's offload (progress, rate, ETA) and the files queued for the ground."""
    lines = []
    for camera, card in sorted((dailies.get("offload") or {}).items()):
        if card.get("state") == "copying" and card.get("total"):
            rate = (card.get("rate_bytes_per_s") or 0) / 1e6
            done = card.get("done", 0) / card["total"]
            lines.append(Cell(f"{camera} offload {done:.0%} at {rate:.0f} MB/s, "
                              f"{duration(card.get('eta_s'))} left"))  # fmt: skip
        else:
            waiting = card.get("waiting", 0)
            lines.append(Cell(f"{camera}: {card.get('offloaded', 0)} clips offloaded, "
                              f"{waiting} waiting", "yellow" if waiting else "dim"))  # fmt: skip
    queue = (dailies.get("downlink") or {}).get("queue") or []
    if queue:
        first = queue[0]
        lines.append(Cell(f"to ground: {first['name']} {first['acked_fraction']:.0%}, "
                          f"{duration(first.get('eta_s'))} left; {len(queue)} queued"))  # fmt: skip
    return lines


def data_lines(view: NodeView) -> list[Cell]:
    data = view.telemetry.get("data") or {}
    lines = []
    for camera, card in sorted((data.get("media") or {}).items()):
        level = card.get("today_level", "ok")
        lines.append(
            Cell(
                f"{camera}: {card.get('free_gb', 0):,.0f} GB free, "
                f"{duration(card.get('record_time_left_s'))} left, today {level}",
                {"red": "bold red", "yellow": "yellow"}.get(level, ""),
            )
        )
    downlink = data.get("downlink") or {}
    if downlink:
        used = float(downlink.get("used_fraction", 0.0))
        allocation = float(downlink.get("allocation_gb", 0.0))
        contact = "in contact" if downlink.get("in_contact") else "no contact"
        window = downlink.get("next_window")
        if not downlink.get("in_contact") and window:
            contact += f", next window in {duration(window.get('starts_in_s'))}"
        style = "bold red" if used >= 1 else "yellow" if used >= 0.8 else ""
        lines.append(Cell(f"downlink today {used:.1%} of {allocation:g} GB", style))
        lines.append(Cell(contact, "" if downlink.get("in_contact") else "yellow"))
    lines += dailies_lines(data.get("dailies") or {})
    backlog, at = view.backlog()
    if backlog:
        held = view.held() is not None
        lines.append(
            Cell(
                f"outbox {backlog.get('messages', 0)} waiting "
                f"({backlog.get('bytes', 0) / 1e3:,.1f} kB, {backlog.get('thinned', 0)} thinned)"
                + (f" as of {clock(at)}, more since: stream held" if held else ""),
                "yellow" if held or backlog.get("messages", 0) > 100 else "",
            )
        )
    return lines or [Cell("no budget figures yet", "dim")]


NODE_STYLES = {
    "online": "bold green",
    "held": "bold yellow",
    "offline": "bold red",
    "loss of signal": "bold yellow",
    "no broker": "bold red",
    "waiting": "dim",
}


def node_line(view: NodeView, now: float) -> list[Cell]:
    status = view.status(now)
    sequence = view.sequence
    since = "" if status.since is None else f" for {duration(now - status.since)}"
    if status.state == "held":  # "HELD until 16:05 (contact schedule)": the detail is the news
        headline, detail = f"{status.state.upper()} {status.detail}", since.strip()
    else:
        headline, detail = f"{status.state.upper()}{since}", status.detail
    cells = [
        Cell(f"{view.node} {headline}", NODE_STYLES[status.state]),
        Cell(detail, "dim"),
        Cell(f"seq {sequence.last_seq}"),
        Cell(
            f"gaps {len(sequence.gaps)} ({sequence.missing()} lost)",
            "bold red" if sequence.gaps else "",
        ),
        Cell(f"dup {sequence.duplicates}"),
    ]
    if view.stream_restarts:
        cells.append(Cell(f"numbering restarted {view.stream_restarts}x (node state lost)",
                          "bold yellow"))  # fmt: skip
    if view.malformed:
        cells.append(Cell(f"malformed {view.malformed}", "yellow"))
    if view.silences:
        longest = max(b - a for a, b in view.silences)
        cells.append(Cell(f"LOS {len(view.silences)}x, longest {duration(longest)}", "yellow"))
    unack = len(view.unacknowledged(now))
    cells.append(Cell(f"alarms {unack} unacknowledged", "bold red" if unack else ""))
    if view.commands_authority():
        cells.append(authority_cell(view))
    return cells


def authority_cell(view: NodeView) -> Cell:
    """Who commands the node: every console sees it."""
    if not view.authority:
        return Cell("authority: nobody (read-only)", "yellow")
    held = ", ".join(
        (f"{h['key_id']}" if scope == "node" else f"{scope}: {h['key_id']}")
        for scope, h in sorted(view.authority.items())
    )
    return Cell(f"authority: {held}", "bold cyan")
