"""What a run leaves behind: verdicts on the terminal, JUnit XML for CI, an HTML report with
plots for the people who qualify the bench."""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import matplotlib

from tools.wording import plural

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from tools.scenario.runner import Outcome

SEVERITY_ROWS = {"info": 0, "warning": 1, "error": 2, "critical": 3}


def verdict_lines(outcome: Outcome) -> list[str]:
    lines = [f"scenario {outcome.scenario.scenario.name}:"]
    for v in outcome.verdicts:
        lines.append(f"  {'PASS' if v.passed else 'FAIL'}  {v.label}: {v.detail}")
    failed = sum(not v.passed for v in outcome.verdicts)
    lines.append(f"  {len(outcome.verdicts) - failed} passed, {failed} failed")
    return lines


def junit(outcome: Outcome, path: Path) -> None:
    name = outcome.scenario.scenario.name
    failures = sum(not v.passed for v in outcome.verdicts)
    suite = ET.Element(
        "testsuite", name=name, tests=str(len(outcome.verdicts)), failures=str(failures)
    )
    for verdict in outcome.verdicts:
        case = ET.SubElement(suite, "testcase", classname=f"scenario.{name}", name=verdict.label)
        if verdict.passed:
            ET.SubElement(case, "system-out").text = verdict.detail
        else:
            ET.SubElement(case, "failure", message=verdict.detail).text = verdict.detail
    tree = ET.ElementTree(suite)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)


def _seconds(outcome: Outcome, ts: float) -> float:
    return ts - outcome.recording.started


def _step_marks(outcome: Outcome, axes: Any) -> None:
    for step in outcome.recording.steps:
        axes.axvline(_seconds(outcome, step["at"]), color="0.7", linewidth=0.8, linestyle=":")


def plot_power(outcome: Outcome, path: Path) -> None:
    rec = outcome.recording
    fig, axes = plt.subplots(figsize=(9, 3.2))
    if rec.draw:
        xs = [_seconds(outcome, ts) for ts, _ in rec.draw]
        axes.plot(xs, [w for _, w in rec.draw], label="draw (PDU channels, simulator truth)")
        axes.step(xs, [rec.cap_at(ts) for ts, _ in rec.draw], where="post", color="tab:red",
                  label="cap")  # fmt: skip
    _step_marks(outcome, axes)
    axes.set(xlabel="wall seconds since the start", ylabel="W", title="Power draw against the cap")
    axes.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_data(outcome: Outcome, path: Path) -> None:
    rec = outcome.recording
    fig, (media, link) = plt.subplots(1, 2, figsize=(9, 3.2))
    series: dict[str, list[tuple[float, float]]] = {}
    errors: dict[str, list[tuple[float, float]]] = {}
    for device, state in rec.states:
        at = state.get("status_at")
        status = state.get("status") or {}
        if not at:
            continue
        if "media_used_bytes" in status:
            series.setdefault(device, []).append((at, status["media_used_bytes"] / 1e9))
        link_stats = state.get("link") or {}
        bad = link_stats.get("crc_errors", 0) + link_stats.get("framing_errors", 0)
        errors.setdefault(device, []).append((at, bad))
    for device, points in series.items():
        media.plot([_seconds(outcome, t) for t, _ in points], [v for _, v in points], label=device)
    media.set(xlabel="s", ylabel="GB", title="Media used per camera")
    for device, points in errors.items():
        if any(v for _, v in points):
            link.plot([_seconds(outcome, t) for t, _ in points], [v for _, v in points],
                      label=device)  # fmt: skip
    link.set(xlabel="s", ylabel="frames", title="Link errors (CRC + framing), cumulative")
    for axes in (media, link):
        _step_marks(outcome, axes)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_events(outcome: Outcome, path: Path) -> None:
    rec = outcome.recording
    fig, axes = plt.subplots(figsize=(9, 3.2))
    colours = {"info": "tab:blue", "warning": "tab:orange", "error": "tab:red",
               "critical": "darkred"}  # fmt: skip
    for event in rec.events:
        x = _seconds(outcome, event["ts"])
        if x < -5:
            continue  # start-up chatter before the scenario clock
        row = SEVERITY_ROWS.get(event["severity"], 0)
        axes.scatter(x, row, color=colours.get(event["severity"], "k"), s=14)
    _step_marks(outcome, axes)
    axes.set_yticks(list(SEVERITY_ROWS.values()), list(SEVERITY_ROWS))
    axes.set(xlabel="wall seconds since the start", title="Events on the timeline")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_report(outcome: Outcome, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    junit(outcome, directory / "junit.xml")
    plot_power(outcome, directory / "power.png")
    plot_data(outcome, directory / "data.png")
    plot_events(outcome, directory / "events.png")
    about = outcome.scenario.scenario
    rec = outcome.recording
    rows = "".join(
        f"<tr class={'pass' if v.passed else 'fail'}><td>{'PASS' if v.passed else 'FAIL'}</td>"
        f"<td>{html.escape(v.label)}</td><td>{html.escape(v.detail)}</td></tr>"
        for v in outcome.verdicts
    )
    steps = "".join(
        f"<tr><td>{s['at'] - rec.started:.2f}</td><td>{html.escape(s['label'])}</td>"
        f"<td>{html.escape(str(s.get('status', '')))}</td>"
        f"<td>{html.escape(str(s.get('reason', '')))}</td></tr>"
        for s in rec.steps
    )
    events = "".join(
        f"<tr><td>{e['ts'] - rec.started:.2f}</td><td>{e['severity']}</td><td>{e['name']}</td>"
        f"<td>{html.escape(e['source'])}</td><td>{html.escape(e['message'])}</td></tr>"
        for e in rec.events
        if e["ts"] - rec.started > -5
    )
    verdict = "PASSED" if outcome.passed else "FAILED"
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{about.name}: {verdict}</title>
<style>
body {{ font-family: sans-serif; max-width: 1000px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; width: 100%; font-size: 0.9em; margin-bottom: 1.5em; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 3px 6px; text-align: left; }}
tr.pass td:first-child {{ color: #176f2c; font-weight: bold; }}
tr.fail td:first-child {{ color: #b00020; font-weight: bold; }}
</style></head><body>
<h1>{html.escape(about.name)}: {verdict}</h1>
<p>{html.escape(about.description)}</p>
<p>{len(outcome.verdicts)} expectations, {sum(not v.passed for v in outcome.verdicts)} failed;
scenario {about.duration_s:g} s at physics speed {rec.speed:g}; {len(rec.events)} events,
{plural(len(rec.draw), "power sample")}, {plural(len(rec.takes), "take")}. Times are wall
seconds from the scenario's start; dotted lines mark the timeline's steps.</p>
<h2>Expectations</h2><table><tr><th></th><th>check</th><th>why</th></tr>{rows}</table>
<h2>Power</h2><img src="power.png" alt="draw against cap">
<h2>Media and link</h2><img src="data.png" alt="media and link errors">
<h2>Events</h2><img src="events.png" alt="events on the timeline">
<h2>Timeline</h2><table><tr><th>s</th><th>step</th><th>result</th><th>reason</th></tr>{steps}
</table>
<h2>Event log</h2><table><tr><th>s</th><th>severity</th><th>event</th><th>source</th>
<th>message</th></tr>{events}</table>
</body></html>
"""
    path = directory / "index.html"
    path.write_text(page)
    return path
