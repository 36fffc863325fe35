"""`cupola bench run SCENARIO [--report DIR] [--speed N]`: verdicts, exit status, report."""

from __future__ import annotations

from pathlib import Path

from tools.exits import CantCreateError, input_refused, reason
from tools.scenario.report import verdict_lines, write_report
from tools.scenario.runner import run_file
from tools.scenario.spec import ScenarioError, load_scenario

LIBRARY = Path(__file__).resolve().parents[2] / "hil" / "scenarios"


def resolve(name: str) -> Path:
    """A path, or the name of a scenario in the library (hil/scenarios/NAME.toml)."""
    path = Path(name)
    if path.exists() or path.suffix:
        return path
    return LIBRARY / f"{name}.toml"


def run(scenario_name: str, report: Path | None, speed: float) -> int:
    try:
        scenario = load_scenario(resolve(scenario_name))
    except ScenarioError as exc:
        raise input_refused(exc) from None

    def progress(text: str) -> None:
        print(text, flush=True)

    outcome = run_file(scenario, speed=speed, on_progress=progress)
    print("\n".join(verdict_lines(outcome)))
    if report is not None:
        try:
            written = write_report(outcome, report)
        except OSError as exc:
            raise CantCreateError(f"{report}: cannot write the report: {reason(exc)}") from None
        print(f"report: {written}")
    return 0 if outcome.passed else 1


def listing() -> int:
    for path in sorted(LIBRARY.glob("*.toml")):
        scenario = load_scenario(path)
        print(f"{path.stem:<20} {scenario.scenario.description}")
    return 0
