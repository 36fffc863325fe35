"""Run many `cupola` command lines as real processes for the price of one interpreter start.

`python -m tests.tools.cli_runner` reads a JSON list of (argv, cwd) from stdin, imports the
CLI once, then forks a child per command line: each child has its own stdin, stdout, stderr
and exit status, as `cupola ...` from a shell would, but skips the half second of interpreter
start and imports. It prints a JSON list of {status, stdout, stderr}.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback

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


def run(cases: list[tuple[list[str], str]]) -> list[dict[str, object]]:
    results = []
    for argv, cwd in cases:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            pid = os.fork()
            if pid == 0:
                _child(argv, cwd, out.fileno(), err.fileno())
            _, wait_status = os.waitpid(pid, 0)
            out.seek(0)
            err.seek(0)
            results.append({
                "status": os.waitstatus_to_exitcode(wait_status),
                "stdout": out.read().decode(errors="replace"),
                "stderr": err.read().decode(errors="replace"),
            })  # fmt: skip
    return results


if __name__ == "__main__":
    json.dump(run(json.load(sys.stdin)), sys.stdout)
