"""Every scenario in the library passes against the real daemon, and the bench can fail."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from firmware_host.budget.power import DISABLE_SHEDDING_ENV
from tools.scenario.cli import LIBRARY
from tools.scenario.report import verdict_lines, write_report
from tools.scenario.runner import run_file
from tools.scenario.spec import ScenarioError, load_scenario

pytestmark = pytest.mark.long

SCENARIOS = sorted(path.stem for path in LIBRARY.glob("*.toml"))
# Every `make test` plays these: the power budget (and, below, a daemon that fails it) and the
# nominal day (tests/tools/test_demo.py, under the monitor). The whole library, minutes of wall
# time, is the bench's qualification run: `make qualify`.
EVERY_RUN = {"power-emergency"}


def test_the_library_holds_the_days_the_bench_must_qualify() -> None:
    assert set(SCENARIOS) >= {
        "nominal", "power-emergency", "noisy-link", "overheating", "device-reset",
        "port-unplug", "broker-outage", "daemon-crash", "media-full",
    }  # fmt: skip


@pytest.mark.parametrize(
    "name",
    [n if n in EVERY_RUN else pytest.param(n, marks=pytest.mark.qualification) for n in SCENARIOS],
)
def test_every_scenario_in_the_library_passes(name: str) -> None:
    outcome = run_file(load_scenario(LIBRARY / f"{name}.toml"))
    assert outcome.passed, "\n".join(verdict_lines(outcome))


def test_a_daemon_that_does_not_shed_fails_the_power_emergency(tmp_path: Path) -> None:
    scenario = load_scenario(LIBRARY / "power-emergency.toml")
    # The cut comes at 5 s and its deadline is 2 s: by 9 s the failure is there to judge (the
    # rest of the day, played whole above, would only add verdicts failing for the same cause)
    about = msgspec.structs.replace(scenario.scenario, duration_s=9.0)
    scenario = msgspec.structs.replace(scenario, scenario=about)
    outcome = run_file(scenario, daemon_env={DISABLE_SHEDDING_ENV: "1"})
    failed = {v.label: v.detail for v in outcome.verdicts if not v.passed}
    report = write_report(outcome, tmp_path / "report")
    assert "within_cap (deadline 2 s)" in failed
    assert "draw over the cap for" in failed["within_cap (deadline 2 s)"]
    assert "no_event power.shed_overdue" in failed
    junit = (tmp_path / "report" / "junit.xml").read_text()
    assert junit.count("<failure") == len(failed) and "FAILED" in report.read_text()
    assert (tmp_path / "report" / "power.png").stat().st_size > 10_000


def test_a_malformed_scenario_is_refused_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[scenario]\nname = "x"\n[bench]\n[[step]]\nat = 1\n')
    with pytest.raises(ScenarioError, match="needs one of command, fault, action"):
        load_scenario(path)
    path.write_text('[scenario]\nname = "x"\n[bench]\n[[expect]]\ncheck = "event"\n')
    with pytest.raises(ScenarioError, match="event needs name"):
        load_scenario(path)
