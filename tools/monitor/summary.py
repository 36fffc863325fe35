"""The monitor's view as plain text, for a log or a run without a terminal."""

from __future__ import annotations

from tools.monitor import rows
from tools.monitor.view import NodeView, utc_midnight


def _table(header: tuple[str, ...], body: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [list(header), *body]) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        for row in [list(header), *body]
    ]


def summary(view: NodeView, now: float) -> str:
    lines = ["  ".join(c.text for c in rows.node_line(view, now)), ""]
    devices = [[c.text for c in rows.device_row(view, name, now)] for name in sorted(view.devices)]
    lines += _table(rows.DEVICE_COLUMNS, devices)
    lines += [f"  {c.text}" for c in rows.camera_lines(view)]
    lines += ["", "power:  " + "; ".join(c.text for c in rows.power_lines(view, now))]
    if pdu := rows.pdu_lines(view):
        lines += ["pdu:", *(f"  {c.text}" for c in pdu)]
    lines += ["data:   " + "; ".join(c.text for c in rows.data_lines(view))]
    takes = view.takes_since(utc_midnight(now))
    lines += ["", f"shot log: {len(takes)} take{'' if len(takes) == 1 else 's'} today"]
    for take in takes:
        circled = " (circled)" if take.circled else ""
        state = "ROLLING" if take.rolling else "cut"
        cameras = ", ".join(sorted(take.clips))
        what = f"scene {take.scene} take {take.take}{circled}"
        lines.append(f"  {what}  {take.timecode_in}  {cameras}  {state}")
    alarms = sorted(view.alarms.values(), key=lambda a: a.raised_at)
    lines += ["", f"alarms: {len(alarms)}"]
    for alarm in alarms:
        flags = ("active" if alarm.active else "cleared") + (
            ", acknowledged" if alarm.acknowledged else ", unacknowledged"
        )
        lines.append(f"  {alarm.level.upper():<6} {alarm.key[0]} {alarm.key[1]} ({flags})")
    warnings = [e for e in view.events if e.severity in ("warning", "critical")]
    lines += ["", f"events: {len(view.events)}, {len(warnings)} warnings or worse"]
    lines += [f"  {rows.clock(e.ts)} {e.severity:<8} {e.name}: {e.message}" for e in warnings]
    return "\n".join(lines)
