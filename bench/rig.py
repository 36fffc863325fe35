"""A whole shoot for benchmarks: broker, simulators, the daemon as its own process, keys."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware_host.config import MqttConfig
from hil.broker import Mosquitto
from hil.processes import ProcessGroup
from protocols.ground import KeyFile, Role
from tools.keys import add_to_keyring, create_key
from tools.simulator_process import cupola_argv, start_simulator


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


@dataclass
class Rig:
    workdir: Path
    broker: Mosquitto
    group: ProcessGroup
    paths: dict[str, str]
    kinds: dict[str, str]
    key: KeyFile
    simulator: subprocess.Popen[bytes]
    daemon: subprocess.Popen[bytes] | None = None
    node: str = "bench-node"

    def start_daemon(
        self,
        per_device: dict[str, dict[str, Any]],
        extra: str = "",
        state_rate_hz: float = MqttConfig().state_rate_hz,  # the product's default
    ) -> subprocess.Popen[bytes]:
        keyring = self.workdir / "keyring.json"
        lines = [
            "[node]", f'name = "{self.node}"', f'state_dir = "{self.workdir / "state"}"',
            "[mqtt]", f'url = "{self.broker.url()}"', f"state_rate_hz = {state_rate_hz}",
            "[auth]", f'keyring = "{keyring}"',
        ]  # fmt: skip
        for name, path in self.paths.items():
            lines += ["[[device]]", f'name = "{name}"', f'kind = "{self.kinds[name]}"']
            lines += [f'port = "{path}"']
            lines += [f"{k} = {_toml(v)}" for k, v in per_device.get(name, {}).items()]
        (self.workdir / "cupola.toml").write_text("\n".join(lines) + "\n" + extra)
        self.daemon = self.group.start(
            "daemon",
            cupola_argv("daemon", "--config", str(self.workdir / "cupola.toml")),
            stderr=(self.workdir / "daemon.log").open("wb"),
        )
        return self.daemon


@contextlib.contextmanager
def rig(bench_toml: str) -> Iterator[Rig]:
    workdir = Path(tempfile.mkdtemp(prefix="cupola-rig-"))
    group = ProcessGroup()
    try:
        with Mosquitto(workdir / "broker") as broker:
            (workdir / "bench.toml").write_text(bench_toml)
            simulator, entries = start_simulator(
                group, workdir / "bench.toml", workdir / "ports", bench_toml.count("[[device]]")
            )
            key = create_key(Role.FLIGHT_CONTROLLER, "bench-fc")
            add_to_keyring(workdir / "keyring.json", key)
            yield Rig(
                workdir, broker, group,
                {e["device"]: e["path"] for e in entries},
                {e["device"]: e["kind"] for e in entries}, key, simulator,
            )  # fmt: skip
            group.stop_all()
    finally:
        group.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
