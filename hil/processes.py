"""Child processes that cannot outlive the process that started them."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
from typing import Any

_PR_SET_PDEATHSIG = 1
_SIG_DFL = 0


def child_preexec() -> None:
    """Run in a child before exec: die with the parent, own process group for clean kills,
    Ctrl-C (SIGINT) and SIGQUIT at their defaults.

    A parent may ignore SIGINT and SIGQUIT for a moment (glibc's system() does, for the whole
    process, while its command runs), and an ignored signal stays ignored across exec: a child
    started in that moment would never see its Ctrl-C. The death signal follows the thread
    that forked, so start children from the main thread (or another that lives as long as
    they should).
    """
    os.setpgid(0, 0)
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        for sig in (signal.SIGINT, signal.SIGQUIT):  # libc's: Python's needs the main thread
            libc.signal(sig, _SIG_DFL)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ProcessGroup:
    """Children started together and stopped together, newest first, whatever happens."""

    def __init__(self) -> None:
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(argv, preexec_fn=child_preexec, **kwargs)  # noqa: PLW1509
        self.processes.append((name, process))
        return process

    def stop(self, process: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL if it has not exited within `timeout`."""
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def stop_all(self, timeout: float = 10.0) -> None:
        for _, process in reversed(self.processes):
            self.stop(process, timeout)
        self.processes.clear()
