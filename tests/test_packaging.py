"""A flight install carries only what the daemon needs: no UI, plotting or bench packages."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from tests.harness import Credentials

ROOT = Path(__file__).resolve().parent.parent
GROUND_AND_BENCH = ("textual", "matplotlib", "cryptography", "psutil", "tomli_w", "numpy",
                    "psycopg", "textual_serve", "playwright", "opentimelineio",
                    "pycmx")  # fmt: skip

# Run in a fresh interpreter in which the extras' packages cannot be imported, as on a flight
# install: the daemon's whole import tree and its configuration check must still work.
BLOCKED_RUN = """
import sys
from importlib.abc import MetaPathFinder

class NotInstalled(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"{{name}} is not part of a flight install")
        return None

sys.meta_path.insert(0, NotInstalled())
import firmware_host.daemon  # noqa: F401  (the whole daemon, every component)
from tools.cli import main
sys.exit(main(["daemon", "--check", {config!r}]))
"""


def _core_dependencies() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [str(d) for d in project["dependencies"]]


def test_core_dependencies_name_no_ground_or_bench_package() -> None:
    names = {d.split(">")[0].split("=")[0].split("<")[0].strip().replace("-", "_").lower()
             for d in _core_dependencies()}  # fmt: skip
    assert names.isdisjoint(GROUND_AND_BENCH), names


def test_the_daemon_runs_without_the_extras(tmp_path: Path) -> None:
    keys = Credentials(tmp_path)
    config = tmp_path / "cupola.toml"
    config.write_text(
        f'[auth]\nkeyring = "{keys.keyring}"\n'
        '[[device]]\nname = "cam-a"\nkind = "camera"\nport = "/dev/serial/by-id/cam-a"\n'
    )
    script = BLOCKED_RUN.format(blocked=set(GROUND_AND_BENCH), config=str(config))
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    assert "OK" in run.stdout
