"""`cupola plan`: check a shoot schedule against the power, media and downlink budgets.

A plan (TOML) lists the budgets, the cameras and lights, the station's planned cap changes
and the setups of every day (scene, time, duration, cameras, light levels, minutes rolling,
minutes of circled takes to send down). Draw comes from the same models the onboard governor
uses (firmware_host/budget/models.py). Per day the planner reports energy, peak draw against
the cap (less the reserve the governor keeps), media used against each card, and downlink
against the allocation; it exits 1 naming the first violation in time (`--all`: every one), 0
if the plan fits.
The peak of a setup assumes its cameras roll with every light at its level: the worst case.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import msgspec

from firmware_host.budget.models import CameraModel, LightModel, RecordingLoad
from protocols.messages.camera import CameraState
from tools.exits import CantCreateError, DataError, UsageError, check_writable, read_input, reason
from tools.wording import plural

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PLOT_FORMATS = ("png", "svg", "pdf")  # what matplotlib's Agg backend writes

HHMM = Annotated[str, msgspec.Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
Positive = Annotated[float, msgspec.Meta(gt=0)]


class Shoot(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    days: Annotated[int, msgspec.Meta(ge=1, le=365)]
    start: datetime.date


class Budget(msgspec.Struct, forbid_unknown_fields=True):
    cap_w: Positive = 300.0  # reference: 300 W continuous for the film payload
    reserve_pct: Annotated[float, msgspec.Meta(ge=0, lt=50)] = 10.0
    idle_w: Annotated[float, msgspec.Meta(ge=0)] = 5.0  # everything asleep between setups
    downlink_gb_per_day: Positive = 5.0  # reference: 5 GB a day
    telemetry_kbps: Annotated[float, msgspec.Meta(ge=0)] = 4.0  # reference: a few kbit/s
    proxy_kbps: Positive = 10_000.0  # H.265 proxies of circled takes


class CameraPlan(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    media_tb: Positive = 2.0  # reference: 2 TB per camera
    bitrate_mbps: Positive = 700.0  # reference: ProRes 422 HQ 4K at 25 fps
    pixels: Positive = 3840 * 2160
    fps: Positive = 25.0
    model: dict[str, float] = msgspec.field(default_factory=dict)


class LightPlan(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    model: dict[str, float] = msgspec.field(default_factory=dict)


class CapChange(msgspec.Struct, forbid_unknown_fields=True):
    day: Annotated[int, msgspec.Meta(ge=1)]
    start: HHMM
    hours: Positive
    cap_w: Positive
    reason: str = "station event"


class Setup(msgspec.Struct, forbid_unknown_fields=True):
    day: Annotated[int, msgspec.Meta(ge=1)]
    start: HHMM
    minutes: Positive
    scene: str
    cameras: list[str]
    lights: dict[str, Annotated[float, msgspec.Meta(ge=0, le=100)]]  # percent
    record_minutes: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    circled_minutes: Annotated[float, msgspec.Meta(ge=0)] = 0.0


class Plan(msgspec.Struct, forbid_unknown_fields=True):
    shoot: Shoot
    budget: Budget = msgspec.field(default_factory=Budget)
    cameras: list[CameraPlan] = msgspec.field(name="camera", default_factory=list)
    lights: list[LightPlan] = msgspec.field(name="light", default_factory=list)
    cap_changes: list[CapChange] = msgspec.field(name="cap_change", default_factory=list)
    setups: list[Setup] = msgspec.field(name="setup", default_factory=list)


class PlanError(DataError):
    """The plan file cannot be read or refers to things it does not define."""


@dataclass
class DayReport:
    day: int
    date: datetime.date
    setups: int = 0
    energy_wh: float = 0.0
    peak_w: float = 0.0
    limit_w: float = 0.0  # the lowest cap less reserve met by that peak's setup (or standing)
    media_bytes: dict[str, float] = field(default_factory=dict)  # cumulative, per camera
    telemetry_bytes: float = 0.0
    proxy_bytes: float = 0.0
    violations: list[str] = field(default_factory=list)

    @property
    def downlink_bytes(self) -> float:
        return self.telemetry_bytes + self.proxy_bytes


def _minute(text: str) -> int:
    hours, minutes = (int(part) for part in text.split(":"))
    return hours * 60 + minutes


def load_plan(path: Path) -> Plan:
    data = read_input(path)
    try:
        plan = msgspec.toml.decode(data, type=Plan)
    except (UnicodeDecodeError, msgspec.DecodeError) as exc:
        raise PlanError(f"{path}: {exc}") from exc
    cameras = {c.name for c in plan.cameras}
    lights = {lt.name for lt in plan.lights}
    for index, setup in enumerate(plan.setups):
        where = f"{path}: setup[{index}] (day {setup.day}, scene {setup.scene})"
        if setup.day > plan.shoot.days:
            raise PlanError(f"{where}: day {setup.day} is after the {plan.shoot.days}-day shoot")
        for name in setup.cameras:
            if name not in cameras:
                raise PlanError(f"{where}: camera {name!r} is not in the plan")
        for name in setup.lights:
            if name not in lights:
                raise PlanError(f"{where}: light {name!r} is not in the plan")
        if setup.record_minutes > setup.minutes:
            raise PlanError(f"{where}: records longer than the setup lasts")
        if _minute(setup.start) + setup.minutes > 24 * 60:
            raise PlanError(f"{where}: runs past midnight; split it over two days")
    return plan


def evaluate(plan: Plan) -> list[DayReport]:
    budget = plan.budget
    reserve = budget.reserve_pct / 100
    cameras = {c.name: c for c in plan.cameras}
    camera_models = {c.name: msgspec.convert(c.model, type=CameraModel) for c in plan.cameras}
    light_models = {lt.name: msgspec.convert(lt.model, type=LightModel) for lt in plan.lights}
    cumulative = dict.fromkeys(cameras, 0.0)
    full_since: dict[str, int] = {}  # camera -> the day its card overflowed
    reports = []
    for day in range(1, plan.shoot.days + 1):
        date = plan.shoot.start + datetime.timedelta(days=day - 1)
        report = DayReport(day, date, limit_w=budget.cap_w * (1 - reserve))
        setups = sorted((s for s in plan.setups if s.day == day), key=lambda s: _minute(s.start))
        report.setups = len(setups)
        busy_minutes = 0.0
        for setup in setups:
            begin = _minute(setup.start)
            lights_w = sum(
                light_models[name].draw(level > 0, round(level * 10))
                for name, level in setup.lights.items()
            )
            standby_w = sum(
                camera_models[n].draw(CameraState.STANDBY, RecordingLoad()) for n in setup.cameras
            )
            rolling_w = sum(
                camera_models[n].draw(CameraState.RECORDING, _recording(cameras[n]))
                for n in setup.cameras
            )
            hours, rolling_h = setup.minutes / 60, setup.record_minutes / 60
            report.energy_wh += (
                lights_w * hours + standby_w * (hours - rolling_h) + rolling_w * rolling_h
            )
            busy_minutes += setup.minutes
            peak = lights_w + (rolling_w if setup.record_minutes else standby_w)
            cap, why = _lowest_cap(plan, day, begin, begin + setup.minutes)
            limit = cap * (1 - reserve)
            if peak > report.peak_w:
                report.peak_w, report.limit_w = peak, limit
            if peak > limit:
                report.violations.append(
                    f"day {day} {setup.start} scene {setup.scene}: peak {peak:.0f} W exceeds the "
                    f"{limit:.0f} W limit ({cap:.0f} W cap{why} less {budget.reserve_pct:g} % "
                    f"reserve) by {peak - limit:.0f} W"
                )
            for name in setup.cameras:
                cumulative[name] += setup.record_minutes * 60 * cameras[name].bitrate_mbps * 1e6 / 8
                capacity = cameras[name].media_tb * 1e12
                if cumulative[name] > capacity and name not in full_since:
                    full_since[name] = day  # the setup that overflowed the card is named
                    report.violations.append(
                        f"day {day} {setup.start} scene {setup.scene}: {name} media full: "
                        f"{cumulative[name] / 1e12:.2f} TB recorded on a "
                        f"{cameras[name].media_tb:g} TB card"
                    )
            report.proxy_bytes += setup.circled_minutes * 60 * budget.proxy_kbps * 1000 / 8
        for name, first in full_since.items():
            if first < day:  # still over a card that filled on an earlier day
                report.violations.append(
                    f"day {day}: {name} media still over its {cameras[name].media_tb:g} TB card "
                    f"({cumulative[name] / 1e12:.2f} TB; full since day {first})"
                )
        report.energy_wh += budget.idle_w * (24 - busy_minutes / 60)
        report.media_bytes = dict(cumulative)
        report.telemetry_bytes = budget.telemetry_kbps * 1000 / 8 * 86400
        allocation = budget.downlink_gb_per_day * 1e9
        if report.downlink_bytes > allocation:
            report.violations.append(
                f"day {day}: downlink {report.downlink_bytes / 1e9:.2f} GB exceeds the "
                f"{budget.downlink_gb_per_day:g} GB allocation"
            )
        reports.append(report)
    return reports


def _recording(camera: CameraPlan) -> RecordingLoad:
    return RecordingLoad(camera.pixels * camera.fps, round(camera.bitrate_mbps * 1000))


def _lowest_cap(plan: Plan, day: int, begin: float, end: float) -> tuple[float, str]:
    cap, why = plan.budget.cap_w, ""
    for change in plan.cap_changes:
        if change.day != day:
            continue
        start = _minute(change.start)
        if start < end and begin < start + change.hours * 60 and change.cap_w < cap:
            cap, why = change.cap_w, f" during '{change.reason}'"
    return cap, why


def render(plan: Plan, reports: list[DayReport]) -> str:
    cams = [c.name for c in plan.cameras]
    lines = [
        f"{plan.shoot.name}: {plural(plan.shoot.days, 'day')} from {plan.shoot.start}",
        "",
        f"{'day':>3}  {'date':<10} {'setups':>6} {'energy':>9} {'peak/limit':>13} "
        + " ".join(f"{c + ' media':>14}" for c in cams)
        + f" {'downlink':>15}  verdict",
    ]
    for r in reports:
        media = " ".join(
            f"{r.media_bytes[c] / 1e12:>6.2f}/{plan.cameras[i].media_tb:<4g}TB"
            for i, c in enumerate(cams)
        )
        verdict = "ok" if not r.violations else "VIOLATION"
        lines.append(
            f"{r.day:>3}  {r.date.isoformat():<10} {r.setups:>6} {r.energy_wh:>7.0f}Wh "
            f"{r.peak_w:>5.0f}/{r.limit_w:<5.0f}W  {media} "
            f"{r.downlink_bytes / 1e9:>6.2f}/{plan.budget.downlink_gb_per_day:<4g}GB  {verdict}"
        )
    return "\n".join(lines)


def figure(plan: Plan, reports: list[DayReport]) -> Figure:
    """The budgets per day as a figure of three panels: power, media, downlink.

    A day is one bar wide (day - 0.5 to day + 0.5); levels that hold for a day (peak, cap) are
    drawn as steps across it, so a change between days is a vertical edge, not a slope.
    Legends sit right of the panels, where they cannot hide a line.
    """
    from matplotlib.figure import Figure  # noqa: PLC0415 - only --plot needs it; slow to import

    days = [r.day for r in reports]
    fig = Figure(figsize=(11, 9), layout="constrained")
    power, media, downlink = fig.subplots(3, 1, sharex=True)
    fig.suptitle(f"{plan.shoot.name}: budgets per day")
    power.bar(days, [r.energy_wh / 24 for r in reports], color="#9ab", label="mean draw (W)")
    power.plot(*_steps(days, [r.peak_w for r in reports]), color="#c60", label="peak draw (W)")
    power.plot(*_steps(days, [r.limit_w for r in reports]), "--", color="#a00",
               label="cap less reserve (W)")  # fmt: skip
    power.set_ylabel("watts")
    for index, camera in enumerate(plan.cameras):
        # cameras often record alike: each later line is thinner, its hollow marker smaller,
        # and its dashes different, so the one beneath still shows around it
        media.plot(
            days,
            [r.media_bytes[camera.name] / 1e12 for r in reports],
            marker="osD^v"[index % 5],
            markersize=max(10 - 3 * index, 3),
            markerfacecolor="none",
            linewidth=max(3 - 0.8 * index, 1),
            linestyle=("-", "--", ":", "-.")[index % 4],
            label=camera.name,
        )
    for media_tb in sorted({c.media_tb for c in plan.cameras}):
        names = ", ".join(c.name for c in plan.cameras if c.media_tb == media_tb)
        media.axhline(
            media_tb, color="#a00", linestyle="--", label=f"card {media_tb:g} TB: {names}"
        )
    media.set_ylabel("media recorded (TB)")
    media.set_ylim(bottom=0)
    telemetry = [r.telemetry_bytes / 1e9 for r in reports]
    downlink.bar(days, telemetry, color="#9ab", label="telemetry")
    downlink.bar(days, [r.proxy_bytes / 1e9 for r in reports], bottom=telemetry, color="#6a6",
                 label="proxies")  # fmt: skip
    downlink.axhline(
        plan.budget.downlink_gb_per_day, color="#a00", linestyle="--", label="allocation"
    )
    downlink.set_ylabel("downlink (GB)")
    downlink.set_xlabel("shoot day")
    failing = [r.day for r in reports if r.violations]
    for axis in (power, media, downlink):
        for day in failing:  # behind the data, edgeless so neighbouring days do not stripe
            label = "day with a violation" if day == failing[0] else "_nolegend_"
            axis.axvspan(day - 0.5, day + 0.5, color="#f00", alpha=0.12, lw=0, zorder=0,
                         label=label)  # fmt: skip
        axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0, fontsize=8)
    downlink.set_xlim(days[0] - 0.5, days[-1] + 0.5)
    downlink.set_xticks(days)
    return fig


def _steps(days: list[int], values: list[float]) -> tuple[list[float], list[float]]:
    """Points of a line that holds each day's value across its bar: flat, then a vertical."""
    xs = [x for day in days for x in (day - 0.5, day + 0.5)]
    ys = [y for value in values for y in (value, value)]
    return xs, ys


def plot(plan: Plan, reports: list[DayReport], path: Path) -> None:
    figure(plan, reports).savefig(path, dpi=100)


def check_plot_path(path: Path) -> None:
    """Refuse a plot path before any work: a format matplotlib writes, in a writable folder."""
    formats = ", ".join(f".{f}" for f in PLOT_FORMATS)
    if path.suffix.lower().lstrip(".") not in PLOT_FORMATS:
        raise UsageError(f"--plot {path}: cannot draw a {path.suffix or 'suffix-less'!s} file; "
                         f"name it {formats}")  # fmt: skip
    check_writable(path)


def run(path: Path, plot_path: Path | None, *, every: bool = False) -> int:
    """Exit 0 when the plan fits, 1 when it does not; a bad plan or path raises (tools/exits).

    An infeasible plan names its first violation in time and counts the rest; `every` lists
    them all, one a line.
    """
    if plot_path is not None:
        check_plot_path(plot_path)
    plan = load_plan(path)
    reports = evaluate(plan)
    print(render(plan, reports))
    if plot_path is not None:
        try:
            plot(plan, reports, plot_path)
        except OSError as exc:
            raise CantCreateError(f"{plot_path}: cannot write: {reason(exc)}") from None
        print(f"\nplot: {plot_path}")
    violations = [v for r in reports for v in r.violations]
    if every and violations:
        print(f"\nINFEASIBLE: {plural(len(violations), 'violation')}:")
        print("\n".join(f"  {v}" for v in violations))
    elif violations:
        rest = len(violations) - 1
        more = f" (and {plural(rest, 'more violation')}; --all lists them)"
        print(f"\nINFEASIBLE: {violations[0]}{more if rest else ''}")
    if violations:
        return 1
    print("\nfeasible: every day fits its power, media and downlink budgets")
    return 0
