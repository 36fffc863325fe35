"""A private mosquitto for tests, the demo and the bench: own port, own config, own files.

Never touches a system broker: every instance listens on a free loopback port chosen at
start, keeps its config, password file, ACL and log under its own work directory, and can
be killed and restarted on the same port to stage outages.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import random
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote

from hil.processes import child_preexec

log = logging.getLogger(__name__)

_SEARCH = ("/usr/sbin", "/usr/local/sbin", "/usr/bin", "/opt/homebrew/sbin")


class BrokerError(RuntimeError):
    """The broker could not be found or did not come up; the message says what to do."""


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def mosquitto_binary(name: str = "mosquitto") -> str:
    found = shutil.which(name)
    if found:
        return found
    for folder in _SEARCH:
        candidate = Path(folder) / name
        if candidate.exists():
            return str(candidate)
    raise BrokerError(
        f"{name} not found; install it with `make deps` or `sudo apt-get install mosquitto`"
    )


_PORTS_FROM = 10000  # below: the machine's own services (PostgreSQL, mosquitto, Redis...)
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_CHOICE = random.SystemRandom()  # not the global generator, which hypothesis seeds alike


def free_port() -> int:
    """A loopback TCP port free now, for a server about to be started on it, chosen below the
    kernel's ephemeral range. A port from that range (what binding port 0 hands out) is also
    what any outgoing connection gets: one opened by a parallel test between this check and
    the server's bind took the port of a web monitor still starting up."""
    low = ephemeral_ports()[0]
    for _ in range(200):
        port = _CHOICE.randrange(_PORTS_FROM, low) if low > _PORTS_FROM + 1000 else 0
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            chosen: int = sock.getsockname()[1]
            return chosen
    raise OSError("no free loopback port below the ephemeral range")


def ephemeral_ports() -> tuple[int, int]:
    """The kernel's range for ports nobody asked for (Linux; its default elsewhere)."""
    try:
        low, high = _EPHEMERAL_RANGE.read_text().split()
    except (OSError, ValueError):
        return 32768, 60999
    return int(low), int(high)


class Mosquitto:
    """One mosquitto process on 127.0.0.1 with the given users, ACL, TLS and extras."""

    def __init__(
        self,
        workdir: Path,
        *,
        users: dict[str, str] | None = None,
        acl: str | None = None,
        tls: TlsFiles | None = None,
        persistence: bool = False,
        extra_config: str = "",
        port: int | None = None,
        name: str = "broker",
    ) -> None:
        self.workdir = workdir
        self.users = users or {}
        self.acl = acl
        self.tls = tls
        self.persistence = persistence
        self.extra_config = extra_config
        self.port = port or free_port()
        self.name = name
        self.process: subprocess.Popen[bytes] | None = None
        self.config_path = workdir / f"{name}.conf"
        self.log_path = workdir / f"{name}.log"

    @property
    def scheme(self) -> str:
        return "mqtts" if self.tls else "mqtt"

    def url(self, user: str | None = None) -> str:
        """Broker URL for `user` (with their password), as the daemon's config takes it."""
        if user is None:
            return f"{self.scheme}://127.0.0.1:{self.port}"
        password = quote(self.users[user], safe="")
        return f"{self.scheme}://{quote(user, safe='')}:{password}@127.0.0.1:{self.port}"

    def _write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"user {getpass.getuser()}",
            "per_listener_settings false",
            f"allow_anonymous {'false' if self.users else 'true'}",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            f"persistence_file {self.name}.db",
            "autosave_interval 1",
            "set_tcp_nodelay true",
            "max_queued_messages 1000000",
            "max_inflight_messages 100",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            f"listener {self.port} 127.0.0.1",
        ]
        if self.tls:
            lines += [
                f"cafile {self.tls.ca}",
                f"certfile {self.tls.cert}",
                f"keyfile {self.tls.key}",
                "tls_version tlsv1.2",
            ]
        if self.users:
            password_file = self.workdir / f"{self.name}.passwd"
            password_file.write_text("")
            password_file.chmod(0o600)
            tool = mosquitto_binary("mosquitto_passwd")
            for user, password in self.users.items():
                subprocess.run(
                    [tool, "-b", str(password_file), user, password],
                    check=True,
                    capture_output=True,
                )
            lines.append(f"password_file {password_file}")
        if self.acl is not None:
            acl_file = self.workdir / f"{self.name}.acl"
            acl_file.write_text(self.acl)
            acl_file.chmod(0o600)
            lines.append(f"acl_file {acl_file}")
        if self.extra_config:
            lines.append(self.extra_config)
        self.config_path.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 10.0) -> Self:
        if self.process is not None and self.process.poll() is None:
            return self
        self._write_config()
        self.process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=child_preexec,  # noqa: PLW1509 - needed so the broker dies with us
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise BrokerError(f"mosquitto exited at start: {err.strip()} (see {self.log_path})")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return self
            time.sleep(0.02)
        self.stop()
        raise BrokerError(f"mosquitto did not listen on port {self.port} within {timeout} s")

    def stop(self) -> None:
        """Graceful stop (persistence is saved)."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """Abrupt stop, as in a crash or a power cut."""
        self._end(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def _end(self, sig: signal.Signals) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr:
            process.stderr.close()
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
