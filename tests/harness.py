"""Real processes for end-to-end tests: the simulator and the daemon, as users run them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from firmware_host.config import parse_config
from firmware_host.daemon import Daemon
from hil.control import ControlClient
from hil.processes import ProcessGroup
from protocols.ground import KeyFile, Role
from tools.ground_client import GroundSession
from tools.keys import add_to_keyring, create_key

# The smallest bench that can shoot: one camera, one light.
CAMERA_AND_LIGHT = """
[[device]]
name = "cam-a"
kind = "camera"
baud = 115200

[[device]]
name = "key"
kind = "light"
baud = 115200
"""

# The same two devices on unpaced links (no baud): as fast as the pseudo-terminals go.
CAMERA_AND_LIGHT_UNPACED = """
[[device]]
name = "cam-a"
kind = "camera"
[[device]]
name = "key"
kind = "light"
"""

_GROUP = ProcessGroup()


def cupola(*args: str) -> list[str]:
    return [sys.executable, "-m", "tools.cli", *args]


class SimProcess:
    """`cupola sim` in its own process; kill() is a crash, stop() a clean exit."""

    def __init__(self, workdir: Path, bench_toml: str, name: str = "sim") -> None:
        self.workdir = workdir
        self.run_dir = workdir / f"{name}-ports"
        self.bench = workdir / f"{name}.toml"
        self.bench.write_text(bench_toml)
        self.log = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.paths: dict[str, str] = {}
        self.kinds: dict[str, str] = {}

    def start(self, timeout: float = 15.0) -> SimProcess:
        self.process = _GROUP.start(
            "sim",
            cupola("sim", "--config", str(self.bench), "--run-dir", str(self.run_dir)),
            stdout=subprocess.PIPE,
            stderr=self.log.open("ab"),
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        expected = self.bench.read_text().count("[[device]]")
        self.paths.clear()
        while len(self.paths) < expected:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"simulator did not start:\n{self.log.read_text()}")
            line = self.process.stdout.readline()
            if line:
                entry = json.loads(line)
                self.paths[entry["device"]] = entry["path"]
                self.kinds[entry["device"]] = entry["kind"]
        return self

    @property
    def control(self) -> ControlClient:
        return ControlClient(self.run_dir / "control.sock")

    def kill(self) -> None:
        """SIGKILL, then remove the stale links as udev removes /dev/serial/by-id links."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()
        for path in self.paths.values():
            Path(path).unlink(missing_ok=True)

    def stop(self) -> None:
        if self.process is not None:
            _GROUP.stop(self.process)


class Credentials:
    """A keyring for the daemon and one key per role, made fresh for a test."""

    def __init__(self, workdir: Path) -> None:
        self.keyring = workdir / "keyring.json"
        self.keys: dict[Role, KeyFile] = {}
        for role in Role:
            key = create_key(role, f"{role.value}-1")
            add_to_keyring(self.keyring, key)
            self.keys[role] = key

    @property
    def flight(self) -> KeyFile:
        return self.keys[Role.FLIGHT_CONTROLLER]


def daemon_config(
    paths: dict[str, str],
    kinds: dict[str, str],
    broker_url: str,
    state_dir: Path,
    *,
    keyring: Path,
    node: str = "test-node",
    device_options: dict[str, Any] | None = None,
    per_device: dict[str, dict[str, Any]] | None = None,
    auth_options: dict[str, Any] | None = None,
    mqtt_options: dict[str, Any] | None = None,
    extra: str = "",
) -> str:
    options = {"poll_hz": 5, "timeout_ms": 150, "retries": 2, "offline_after_s": 1.5}
    options.update(device_options or {})
    lines = [
        "[node]",
        f'name = "{node}"',
        f'state_dir = "{state_dir}"',
        "[mqtt]",
        f'url = "{broker_url}"',
        "state_rate_hz = 10",
        "reconnect_max_s = 0.5",
        *(f"{key} = {json.dumps(value)}" for key, value in (mqtt_options or {}).items()),
        "[auth]",
        f'keyring = "{keyring}"',
        *(f"{key} = {json.dumps(value)}" for key, value in (auth_options or {}).items()),
    ]
    for name, path in paths.items():
        lines += ["[[device]]", f'name = "{name}"', f'kind = "{kinds[name]}"', f'port = "{path}"']
        own = {**options, **(per_device or {}).get(name, {})}
        lines += [f"{key} = {_toml(value)}" for key, value in own.items()]
    return "\n".join(lines) + "\n" + extra


def _toml(value: Any) -> str:
    """A TOML value: JSON spells scalars and arrays the same way; tables need braces."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def camera_and_light_bench(
    workdir: Path, broker_url: str, **options: Any
) -> tuple[SimProcess, Credentials, str]:
    """The smallest bench running, fresh keys, and a daemon configuration for them (its
    state in workdir/state); `options` go to `daemon_config`."""
    sim = SimProcess(workdir, CAMERA_AND_LIGHT).start()
    credentials = Credentials(workdir)
    config = daemon_config(
        sim.paths, sim.kinds, broker_url, workdir / "state", keyring=credentials.keyring,
        **options,
    )  # fmt: skip
    return sim, credentials, config


class DaemonProcess:
    def __init__(self, workdir: Path, config_toml: str, name: str = "daemon") -> None:
        self.config = workdir / f"{name}.toml"
        self.config.write_text(config_toml)
        self.log = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> DaemonProcess:
        self.process = _GROUP.start(
            "daemon",
            cupola("--log-level", "info", "daemon", "--config", str(self.config)),
            stdin=subprocess.DEVNULL,  # a service's daemon: SIGHUP re-reads the keyring
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("ab"),
        )
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> int:
        assert self.process is not None
        return _GROUP.stop(self.process)


def stop_all() -> None:
    _GROUP.stop_all()


async def until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Wait until `check()` holds, looking again every 10 ms, for at most `timeout` seconds:
    for state that announces no event of its own (a counter, a file). Never a sleep as
    synchronisation: it returns as soon as the condition holds, however busy the machine."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting until {what}")
        await asyncio.sleep(0.01)


async def frames_recorded(ground: GroundSession, cameras: tuple[str, ...]) -> None:
    """Until every camera's polled status says recording, then shows its timecode moved on:
    a cut within a frame of the roll would rightly log 0 frames."""

    def status(camera: str) -> dict[str, Any]:
        return ground.states[camera].get("status") or {}

    await ground.wait_for(
        lambda: all(status(c).get("state") == "recording" for c in cameras), 10, "recording"
    )  # the polled status confirms again what RECORD_STARTED said first
    first = {c: status(c)["timecode"] for c in cameras}
    await ground.wait_for(
        lambda: all(status(c)["timecode"] > first[c] for c in cameras), 10, "frames recorded"
    )


@contextlib.asynccontextmanager
async def flowing_daemon(tmp_path: Path, broker_url: str) -> AsyncIterator[Daemon]:
    """An in-process daemon with no devices, its stream to the ground flowing; stopped after."""
    credentials = Credentials(tmp_path)
    toml = daemon_config({}, {}, broker_url, tmp_path / "state", keyring=credentials.keyring)
    daemon = Daemon(parse_config(toml))
    stop = asyncio.Event()
    runner = asyncio.create_task(daemon.run(stop))
    try:
        await until(daemon.ground.flowing.is_set, "the stream to the ground flows")
        yield daemon
    finally:
        stop.set()
        await runner


def interrupt(process: subprocess.Popen[Any], within_s: float = 10.0) -> int:
    """Ctrl-C, as a user ends a live watch; its exit status. One still running `within_s`
    later fails the test saying what it was doing: its signal masks and where it waits."""
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(within_s)
    except subprocess.TimeoutExpired:
        proc = Path(f"/proc/{process.pid}")
        status = [
            line for line in (proc / "status").read_text().splitlines()
            if line.startswith(("State", "SigBlk", "SigIgn", "SigCgt"))
        ]  # fmt: skip
        waiting = (proc / "wchan").read_text()
        process.kill()
        process.wait()
        raise AssertionError(
            f"still running {within_s:g} s after Ctrl-C: {status}; waiting in {waiting!r}"
        ) from None
