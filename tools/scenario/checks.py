"""Expectations, judged from outside the daemon: what the ground received, the simulators'
own state, the shot log. Each check returns a verdict that says why it passed or failed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tools.monitor.view import NodeView
from tools.scenario.spec import Expect
from tools.wording import plural


@dataclass
class Recording:
    """Everything a run saw, in wall-clock seconds."""

    started: float  # scenario second 0
    speed: float
    initial_cap_w: float
    reserve_pct: float
    frame_rate: float
    events: list[dict[str, Any]]
    gaps: list[tuple[int, int]]
    duplicates: int
    steps: list[dict[str, Any]]  # label, at (wall), outcome, status, reason
    draw: list[tuple[float, float]] = field(default_factory=list)  # (ts, W) simulator truth
    device_draw: list[tuple[float, dict[str, float]]] = field(default_factory=list)  # per load
    states: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    takes: list[dict[str, Any]] = field(default_factory=list)
    sim: dict[str, dict[str, Any]] = field(default_factory=dict)  # device -> model state
    budget: dict[str, Any] = field(default_factory=dict)
    # the crew's view: (received, event) on the node's own broker (local/event)
    local_events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    # the ground's view: a monitor fed every non-local message, its status after each one
    # (received, state), and the node's link notices as they arrived (received, body)
    ground: NodeView | None = None
    ground_status: list[tuple[float, str]] = field(default_factory=list)
    links: list[tuple[float, dict[str, Any]]] = field(default_factory=list)

    def wall(self, scenario_s: float) -> float:
        return self.started + scenario_s / self.speed

    def cap_at(self, ts: float) -> float:
        cap = self.initial_cap_w
        for event in self.events:
            if event["name"] == "power.cap_changed" and event["ts"] <= ts:
                cap = float(event["data"]["cap_w"])
        return cap


@dataclass(frozen=True)
class Verdict:
    label: str
    passed: bool
    detail: str


def _events(rec: Recording, expect: Expect) -> list[dict[str, Any]]:
    return [
        e for e in rec.events
        if e["name"] == expect.name and (expect.source is None or e["source"] == expect.source)
    ]  # fmt: skip


def no_telemetry_gap(rec: Recording, _: Expect) -> tuple[bool, str]:
    if rec.gaps:
        return False, f"{len(rec.gaps)} gaps in the stream after de-duplication: {rec.gaps[:5]}"
    return True, f"stream contiguous ({rec.duplicates} duplicates dropped)"


def within_cap(rec: Recording, expect: Expect) -> tuple[bool, str]:
    if not rec.draw:
        return False, "no draw measured: the bench has no PDU"
    worst, over_since, peak = 0.0, None, 0.0
    for ts, watts in rec.draw:
        cap = rec.cap_at(ts)
        peak = max(peak, watts - cap)
        if watts > cap:
            over_since = ts if over_since is None else over_since
            worst = max(worst, ts - over_since)
        else:
            over_since = None
    samples = f"{len(rec.draw)} PDU samples"
    if worst > expect.deadline_s:
        return False, f"draw over the cap for {worst:.2f} s (deadline {expect.deadline_s:g} s); " \
            f"up to {peak:.0f} W over; {samples}"  # fmt: skip
    return True, f"longest time over the cap {worst:.2f} s; {samples}"


def _window(rec: Recording, expect: Expect) -> tuple[float, float]:
    end = float("inf") if expect.until is None else rec.wall(expect.until)
    return rec.wall(expect.after), end


def draw_between(rec: Recording, expect: Expect) -> tuple[bool, str]:
    """No more shed than needed: the draw stays within one shedding step under the cap less
    the reserve (and never above that)."""
    start, end = _window(rec, expect)
    samples = [(ts, w) for ts, w in rec.draw if start <= ts <= end]
    if not samples:
        return False, "no PDU samples in the window"
    low = [(ts, w, rec.cap_at(ts) * (1 - rec.reserve_pct / 100)) for ts, w in samples]
    under = [(w, top) for _, w, top in low if w < top - expect.step_w]
    over = [(w, top) for _, w, top in low if w > top]
    least = min(w for _, w in samples)
    most = max(w for _, w in samples)
    if under:
        w, top = under[0]
        gap = f"{w:.1f} W, {top - w:.1f} W under the cap less reserve"
        return False, f"{len(under)} of {len(samples)} samples shed more than needed: " \
            f"{gap} (one step {expect.step_w:g} W)"  # fmt: skip
    if over:
        w, top = over[0]
        return False, f"{len(over)} of {len(samples)} samples over cap less reserve: " \
            f"{w:.1f} W against {top:.0f} W"  # fmt: skip
    return True, f"draw {least:.1f}-{most:.1f} W over {len(samples)} PDU samples"


def device_draw(rec: Recording, expect: Expect) -> tuple[bool, str]:
    start, end = _window(rec, expect)
    name = str(expect.device)
    watts = [d[name] for ts, d in rec.device_draw if start <= ts <= end and name in d]
    if not watts:
        return False, f"no PDU samples of {name} in the window"
    bad = [
        w for w in watts
        if (expect.at_least is not None and w < expect.at_least)
        or (expect.at_most is not None and w > expect.at_most)
    ]  # fmt: skip
    span = f"{name} drew {min(watts):.1f}-{max(watts):.1f} W over {len(watts)} samples"
    return not bad, span


def takes_in_sync(rec: Recording, expect: Expect) -> tuple[bool, str]:
    if not rec.takes:
        return False, "the shot log has no takes"
    worst = 0
    for take in rec.takes:
        starts = [c["timecode_in"] for c in take["clips"] if c["timecode_in"] is not None]
        if len(starts) > 1:
            worst = max(worst, max(starts) - min(starts))
    if worst > expect.frames:
        return False, f"cameras started up to {worst} frames apart"
    return True, f"{plural(len(rec.takes), 'take')}, cameras at most {worst} frames apart"


def clips_in_sync(rec: Recording, expect: Expect) -> tuple[bool, str]:
    """The simulators' own clips, not the daemon's log: the n-th clip of every camera began
    on the same frame (a 9-pin deck cannot say where its clip began; its model knows)."""
    clips = {n: s["clips"] for n, s in rec.sim.items() if isinstance(s.get("clips"), list)}
    if len(clips) < 2 or not all(clips.values()):
        return False, f"clips on {sorted(n for n, c in clips.items() if c)}: need two cameras"
    count = min(len(c) for c in clips.values())
    worst = max(
        max(c[i]["timecode_in"] for c in clips.values())
        - min(c[i]["timecode_in"] for c in clips.values())
        for i in range(count)
    )
    ok = worst <= expect.frames
    return (
        ok,
        f"{plural(count, 'clip')} on {', '.join(sorted(clips))}, at most {worst} frames apart",
    )


def commands_answered(rec: Recording, _: Expect) -> tuple[bool, str]:
    commands = [s for s in rec.steps if s["kind"] == "command"]
    bad = [s for s in commands if not s["answered"] or not s["as_expected"]]
    if bad:
        first = bad[0]
        return False, f"{len(bad)} of {len(commands)} commands not answered as expected; " \
            f"first: {first['label']} -> {first['status']} {first['reason']}"  # fmt: skip
    return True, f"{len(commands)} commands, every one answered as expected"


def event(rec: Recording, expect: Expect) -> tuple[bool, str]:
    after = rec.wall(expect.after)
    found = [e for e in _events(rec, expect) if e["ts"] >= after]
    if not found:
        seen = len(_events(rec, expect))
        return False, f"no {expect.name} after scenario second {expect.after:g} ({seen} before)"
    delay = found[0]["ts"] - after
    if expect.within_s is not None and delay > expect.within_s:
        return False, f"{expect.name} came {delay:.2f} s after, later than {expect.within_s:g} s"
    return True, f"{expect.name} {delay:.2f} s after: {found[0]['message']}"


def no_event(rec: Recording, expect: Expect) -> tuple[bool, str]:
    found = _events(rec, expect)
    if found:
        return False, f"{len(found)} x {expect.name}; first: {found[0]['message']}"
    return True, f"no {expect.name}"


def shotlog(rec: Recording, expect: Expect) -> tuple[bool, str]:
    statuses = [t["status"] for t in rec.takes]
    if expect.takes is not None and len(rec.takes) != expect.takes:
        return False, f"{plural(len(rec.takes), 'take')} in the shot log, expected {expect.takes}"
    if expect.status is not None and any(s != expect.status for s in statuses):
        return False, f"take statuses {statuses}, expected all {expect.status}"
    return True, f"{plural(len(rec.takes), 'take')}: {statuses}"


def sim(rec: Recording, expect: Expect) -> tuple[bool, str]:
    state = rec.sim.get(str(expect.device), {})
    if expect.field not in state:
        return False, f"{expect.device} has no {expect.field} (has {sorted(state)})"
    value = state[str(expect.field)]
    ok = (
        (expect.equals is None or value == expect.equals)
        and (expect.at_least is None or value >= expect.at_least)
        and (expect.at_most is None or value <= expect.at_most)
    )
    return ok, f"{expect.device}.{expect.field} = {value!r}"


def crew_alarm(rec: Recording, expect: Expect) -> tuple[bool, str]:
    """The crew's copy (local/event) of `name` arrived within `within_s` of it happening."""
    limit = expect.within_s or 1.0
    found = [
        (at, e) for at, e in rec.local_events
        if e["name"] == expect.name and (expect.source is None or e["source"] == expect.source)
    ]  # fmt: skip
    if not found:
        return False, f"no {expect.name} on local/event ({len(rec.local_events)} local events)"
    at, first = found[0]
    delay = at - float(first["ts"])
    return delay <= limit, f"{expect.name} onboard {delay:.3f} s after it happened"


def _hold(rec: Recording) -> tuple[float, float] | None:
    """(held notice received, flowing notice received after it) of the first hold."""
    held = next((at for at, body in rec.links if body["state"] == "held"), None)
    if held is None:
        return None
    flowing = next((at for at, b in rec.links if b["state"] == "flowing" and at > held), None)
    return held, float("inf") if flowing is None else flowing


def ground_held(rec: Recording, expect: Expect) -> tuple[bool, str]:
    """`name` happened inside a hold the ground was told of, and its monitor never read
    ONLINE while the hold lasted."""
    hold = _hold(rec)
    if hold is None:
        return False, "the node never announced a held stream"
    start, end = hold
    inside = [e for e in rec.events if e["name"] == expect.name and start <= e["ts"] < end]
    if not inside:
        return False, f"no {expect.name} inside the hold"
    during = [state for at, state in rec.ground_status if start <= at < end]
    wrong = sorted(set(during) - {"held", "loss of signal"})
    if wrong:
        return False, f"the ground's monitor read {wrong} while the stream was held"
    return True, f"{len(during)} ground messages during a {end - start:.1f} s hold, all held/LOS"


def no_stale_alarm(rec: Recording, expect: Expect) -> tuple[bool, str]:
    """After the backlog, the ground's monitor shows `name` in its log, not as an alarm."""
    view = rec.ground
    if view is None:
        return False, "no ground view recorded"
    logged = [e for e in view.events if e.name == expect.name and e.source == expect.source]
    active = [a for a in view.alarms.values() if a.key[0] == expect.source and a.active]
    if not logged:
        return False, f"{expect.name} never reached the ground's event log"
    if active:
        return False, f"stale alarm still active on the ground: {active[0].message}"
    historical = "historical" if logged[0].historical else "live"
    return True, f"{expect.name} in the ground's log ({historical}), no active alarm"


CHECKS: dict[str, Callable[[Recording, Expect], tuple[bool, str]]] = {
    "no_telemetry_gap": no_telemetry_gap,
    "within_cap": within_cap,
    "takes_in_sync": takes_in_sync,
    "clips_in_sync": clips_in_sync,
    "commands_answered": commands_answered,
    "event": event,
    "no_event": no_event,
    "shotlog": shotlog,
    "sim": sim,
    "crew_alarm": crew_alarm,
    "ground_held": ground_held,
    "no_stale_alarm": no_stale_alarm,
    "draw_between": draw_between,
    "device_draw": device_draw,
}


def judge(rec: Recording, expects: list[Expect]) -> list[Verdict]:
    verdicts = []
    for expect in expects:
        passed, detail = CHECKS[expect.check](rec, expect)
        verdicts.append(Verdict(expect.label, passed, detail))
    return verdicts
