"""`cupola up` as a new user meets it: one terminal brings the rig up, another uses it."""

from __future__ import annotations

import json
import queue
import shlex
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from hil.processes import child_preexec
from tests.harness import cupola
from tools.up import UpError, generated_bench, resolve_bench, shipped_benches

README = Path(__file__).resolve().parents[2] / "README.md"


class Lines:
    """A process's stdout lines, read by a thread (a selector misses lines already in the
    pipe's buffer), waited for with a deadline."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        stdout = process.stdout
        self.queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [self.queue.put(ln) for ln in stdout], daemon=True).start()

    def until(self, marker: str, timeout: float) -> list[str]:
        """Lines up to and including the first that contains `marker`."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while not seen or marker not in seen[-1]:
            try:
                seen.append(self.queue.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"no {marker!r} within {timeout} s; saw {seen}") from None
        return seen


def _as_run_here(printed: str) -> list[str]:
    """A printed `cupola ...` line, run by this interpreter (no installed script needed)."""
    argv = shlex.split(printed)
    assert argv[0] == "cupola"
    return cupola(*argv[1:])


def test_up_then_the_printed_monitor_and_cmd_work_and_ctrl_c_stops_all(tmp_path: Path) -> None:
    up = subprocess.Popen(
        cupola("up", "--bench", "minimal", "--dir", str(tmp_path / "rig")),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=child_preexec,  # noqa: PLW1509 - so its Ctrl-C reaches it
    )  # fmt: skip
    up_lines = Lines(up)
    try:
        lines = up_lines.until("Ctrl-C stops", timeout=60)
        printed = {line.split()[1]: line.strip() for line in lines if line.startswith("  cupola")}
        assert set(printed) == {"monitor", "commands", "cmd"}

        sent = subprocess.run(_as_run_here(printed["cmd"]), capture_output=True, text=True,
                              timeout=30, check=False)  # fmt: skip
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert sent.stdout.startswith("ok: light.set")  # the result as text (--json: raw)

        # The monitor line as printed, in its line-per-message mode (no terminal here).
        monitor = subprocess.Popen([*_as_run_here(printed["monitor"]), "--json"],
                                   stdout=subprocess.PIPE, text=True,
                                   preexec_fn=child_preexec)  # fmt: skip  # noqa: PLW1509
        try:
            seen = Lines(monitor).until("/birth", timeout=30)
            birth = json.loads(seen[-1])
            assert birth["topic"].endswith("iss-film/birth"), birth
            assert set(birth["message"]["body"]["devices"]) == {"cam-a", "key"}
        finally:
            monitor.send_signal(signal.SIGINT)
            monitor.wait(10)
        port = int(printed["cmd"].split("127.0.0.1:")[1].split()[0])
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(30)
    assert up.stderr is not None
    err = up.stderr.read()
    assert up.returncode == 0, err
    assert "Traceback" not in err
    up_lines.until("cupola up: stopping", timeout=5)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert (tmp_path / "rig" / "CONNECT.txt").read_text().startswith("cupola monitor")


def test_the_readme_shows_up_and_the_shipped_benches_load() -> None:
    assert "cupola up" in README.read_text()
    assert {"minimal", "studio", "crew-of-three"} <= set(shipped_benches())
    for name in shipped_benches():
        assert resolve_bench(name).is_file()


def test_bad_bench_names_and_counts_are_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(UpError, match="no bench named 'nosuch'; shipped: "):
        resolve_bench("nosuch")
    with pytest.raises(UpError, match="does not exist"):
        resolve_bench(str(tmp_path / "missing.toml"))
    with pytest.raises(UpError, match="choose 1 to 64"):
        generated_bench(0)
    refused = subprocess.run(cupola("up", "--bench", "nosuch", "--dir", str(tmp_path)),
                             capture_output=True, text=True, check=False)  # fmt: skip
    assert refused.returncode == 2
    assert refused.stderr.strip().startswith("cupola up: no bench named")
    assert "Traceback" not in refused.stderr
