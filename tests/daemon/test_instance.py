"""One daemon per state directory: a second refuses in one line, naming the first; the lock
goes with the process holding it, a kill included; a disk that cannot hold the lock file
does not stop the daemon."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_host.instance import LOCK_FILE, StateDirInUse, claim_state_dir
from tests.harness import Credentials
from tools.exits import EX_TEMPFAIL
from tools.simulator_process import cupola_argv


def test_a_second_claim_is_refused_naming_the_holder_and_free_once_it_lets_go(
    tmp_path: Path,
) -> None:
    first = claim_state_dir(tmp_path / "state")
    assert first is not None
    with pytest.raises(StateDirInUse, match=rf"pid {os.getpid()}\b.*{tmp_path / 'state'}"):
        claim_state_dir(tmp_path / "state")
    os.close(first)
    second = claim_state_dir(tmp_path / "state")
    assert second is not None
    os.close(second)


def test_a_killed_holder_leaves_no_lock_behind(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from pathlib import Path; from firmware_host.instance import "
         "claim_state_dir; fd = claim_state_dir(Path(sys.argv[1])); print(fd, flush=True); "
         "sys.stdin.read()", str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() != "None"
    with pytest.raises(StateDirInUse, match=f"pid {holder.pid}"):
        claim_state_dir(tmp_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    fd = claim_state_dir(tmp_path)
    assert fd is not None
    os.close(fd)


def test_a_lock_file_that_cannot_be_made_leaves_the_daemon_unguarded_not_stopped(
    tmp_path: Path,
) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / LOCK_FILE).mkdir()  # not a file: cannot be opened for writing
    assert claim_state_dir(tmp_path / "state") is None


def test_a_second_daemon_on_a_held_state_directory_exits_75_in_one_line(tmp_path: Path) -> None:
    credentials = Credentials(tmp_path)
    state = tmp_path / "state"
    (tmp_path / "cupola.toml").write_text(
        f'[node]\nstate_dir = "{state}"\n[mqtt]\nurl = "mqtt://127.0.0.1:1"\n'
        f'[auth]\nkeyring = "{credentials.keyring}"\n'
        '[[device]]\nname = "cam"\nkind = "camera"\nport = "/dev/cupola-no-such-port"\n'
    )
    held = claim_state_dir(state)
    assert held is not None
    try:
        second = subprocess.run(
            cupola_argv("daemon", "--config", str(tmp_path / "cupola.toml")),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        os.close(held)
    assert second.returncode == EX_TEMPFAIL
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and f"pid {os.getpid()}" in lines[0] and str(state) in lines[0]
    assert not (state / "outbox.db").exists()  # refused before it touched anything
