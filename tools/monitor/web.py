"""`cupola monitor --web HOST:PORT`: the same monitor in a browser, served by textual-serve.

Each browser session runs its own monitor process with the options this one was given,
the key included: whoever reaches HOST:PORT commands as that key, within its role and the
node's command authority, exactly as at the terminal. Without a key it is read-only. Bind it
to 127.0.0.1 (behind an authenticating proxy for other machines) unless the network is the
console room's own.
"""

from __future__ import annotations

import ipaddress
import shlex
import sys

from tools.exits import UsageError


def address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--web {text!r}: give HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]"), int(port)


def exposed(host: str) -> bool:
    """Reachable from other machines (not a loopback address or localhost)."""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a name: whatever it resolves to


def run_web(where: str, monitor_args: list[str], *, with_key: bool) -> int:
    """Serve until interrupted; every session runs `cupola monitor MONITOR_ARGS`."""
    from textual_serve.server import Server  # noqa: PLC0415 - only --web needs it

    host, port = address(where)
    if with_key and exposed(host):
        print(f"cupola monitor: warning: anyone reaching {host}:{port} sends commands signed "
              "with this key", file=sys.stderr)  # fmt: skip
    command = shlex.join([sys.executable, "-m", "tools.cli", "monitor", *monitor_args])
    Server(command, host=host, port=port, title="Cupola monitor").serve()
    return 0
