"""Run many `cupola` command lines as real processes for the price of one interpreter start.

`python -m tests.tools.cli_runner` reads a JSON list of (argv, cwd) from stdin, imports the
CLI once, then forks a child per command line: each child has its own stdin, stdout, stderr
and exit status, as `cupola ...` from a shell would, but skips the half second of interpreter
start and imports. It prints a JSON list of {status, stdout, stderr}.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import traceback
from typing import IO

import tools.cli


def _child(argv: list[str], cwd: str, out_fd: int, err_fd: int) -> None:
    """In the forked child: become `cupola ARGV` run from `cwd`, then exit with its status."""
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_fd, 1)
    os.dup2(err_fd, 2)
    os.chdir(cwd)
    sys.argv = ["cupola", *argv]
    status = 1
    try:
        status = tools.cli.main(argv)
    except SystemExit as exit_:  # argparse's usage errors
        status = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:  # what the interpreter would do: the traceback, status 1
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def run(cases: list[tuple[list[str], str]], at_once: int = 8) -> list[dict[str, object]]:
    """Every case in its own child, `at_once` of them running together (most wait on a
    file, a socket or a timeout, not on the CPU); results in the order of `cases`."""
    results: list[dict[str, object]] = [{} for _ in cases]
    running: dict[int, tuple[int, IO[bytes], IO[bytes]]] = {}  # pid: (index, out, err)

    def reap_one() -> None:
        pid, wait_status = os.wait()
        index, out, err = running.pop(pid)
        out.seek(0)
        err.seek(0)
        results[index] = {
            "status": os.waitstatus_to_exitcode(wait_status),
            "stdout": out.read().decode(errors="replace"),
            "stderr": err.read().decode(errors="replace"),
        }

    with contextlib.ExitStack() as files:
        for index, (argv, cwd) in enumerate(cases):
            while len(running) >= at_once:
                reap_one()
            out = files.enter_context(tempfile.TemporaryFile())
            err = files.enter_context(tempfile.TemporaryFile())
            pid = os.fork()
            if pid == 0:
                _child(argv, cwd, out.fileno(), err.fileno())
            running[pid] = (index, out, err)
        while running:
            reap_one()
    return results


if __name__ == "__main__":
    json.dump(run(json.load(sys.stdin)), sys.stdout)
