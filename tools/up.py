"""`cupola up`: a private broker, a simulated bench and the daemon, ready for hand use.

Everything lives in one folder (keys, configurations, logs, the daemon's state), so that a
second terminal can run `cupola monitor` and `cupola cmd` with the lines `up` prints, and a
second `up` in the same folder keeps the keys and the shot log. Ctrl-C (or SIGTERM) stops
all of it; a part that dies on its own stops the rest and names its log.
"""

from __future__ import annotations

import asyncio
import shlex
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import msgspec
import tomli_w

from firmware_host.config import ConfigError, load_config
from hil.bench import BenchError, BenchSpec, load_bench
from hil.broker import BrokerError, Mosquitto
from hil.gear.assemble import daemon_options
from hil.processes import ProcessGroup
from protocols.ground import KeyFileError, Role, read_key
from tools.ground_client import GroundSession
from tools.keys import add_to_keyring, create_key, write_secret
from tools.simulator_process import cupola_argv, start_simulator

NODE = "iss-film"  # the ground tools' default node: no --node needed by hand
BENCHES = Path(__file__).resolve().parents[1] / "hil" / "benches"
ONLINE_TIMEOUT_S = 30.0
KEYS = {  # key file stem -> role; one console of each kind
    "flight": Role.FLIGHT_CONTROLLER,
    "director": Role.DIRECTOR,
    "crew": Role.CREW,
    "monitor": Role.MONITOR,
}
PDU_CHANNELS = 8


class UpError(Exception):
    """The rig could not be brought up; the message says what and where to look."""


def shipped_benches() -> list[str]:
    return sorted(p.stem for p in BENCHES.glob("*.toml"))


def resolve_bench(name: str) -> Path:
    """A shipped bench by name (`studio`), or a bench file by path."""
    path = Path(name)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise UpError(f"bench file {path} does not exist")
        return path
    shipped = BENCHES / f"{name}.toml"
    if not shipped.is_file():
        raise UpError(f"no bench named {name!r}; shipped: {', '.join(shipped_benches())}")
    return shipped


def generated_bench(devices: int) -> str:
    """A bench file of `devices` loads, cameras and lights in turn, the first eight on a PDU."""
    if not 1 <= devices <= 64:
        raise UpError(f"--devices {devices}: choose 1 to 64")
    table: list[dict[str, Any]] = [{"name": "pdu", "kind": "pdu", "baud": 115200}]
    for index in range(devices):
        kind = "camera" if index % 2 == 0 else "light"
        entry: dict[str, Any] = {"name": f"{kind[:3]}-{index // 2 + 1}", "kind": kind}
        entry["baud"] = 115200
        if index < PDU_CHANNELS:
            entry["pdu_channel"] = index
        table.append(entry)
    return tomli_w.dumps({"bench": {"seed": devices}, "device": table})


@dataclass(frozen=True)
class Layout:
    """Where everything of one rig lives."""

    root: Path

    @property
    def keyring(self) -> Path:
        return self.root / "keyring.json"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    def key(self, stem: str) -> Path:
        return self.keys / f"{stem}.key"

    @property
    def bench(self) -> Path:
        return self.root / "bench.toml"

    @property
    def config(self) -> Path:
        return self.root / "cupola.toml"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def log(self, part: str) -> Path:
        return self.logs / f"{part}.log"


def ensure_keys(layout: Layout) -> None:
    """The rig's keys: kept from an earlier `up` in this folder when each reads back, or made
    afresh (all of them, with a new keyring, when any is missing or damaged)."""
    try:
        if layout.keyring.exists() and all(layout.key(s).exists() for s in KEYS):
            for stem in KEYS:
                read_key(layout.key(stem))
            return
    except KeyFileError:
        pass  # a damaged key: make a new set below
    layout.keys.mkdir(parents=True, exist_ok=True)
    layout.keyring.unlink(missing_ok=True)
    for stem, role in KEYS.items():
        key = create_key(role, f"{stem}-console")
        add_to_keyring(layout.keyring, key)
        write_secret(layout.key(stem), msgspec.json.format(msgspec.json.encode(key)))


def daemon_config(layout: Layout, spec: BenchSpec, ports: dict[str, str], url: str) -> str:
    devices = [
        {"name": d.name, "kind": d.kind, "port": ports[d.name],
         **({"baud": d.baud} if d.baud else {}),
         **({"pdu_channel": d.pdu_channel} if d.pdu_channel is not None else {}),
         **daemon_options(d.protocol, d.gear)}  # real gear: its protocol and settings
        for d in spec.devices
    ]  # fmt: skip
    cameras = [d.name for d in spec.devices if d.kind == "camera"]
    config: dict[str, Any] = {
        "node": {"name": NODE, "state_dir": str(layout.root / "state")},
        "mqtt": {"url": url, "reconnect_max_s": 1.0},
        "auth": {"keyring": str(layout.keyring)},
        "device": devices,
        **({"group": [{"name": "main", "cameras": cameras}]} if cameras else {}),
    }
    if spec.bench.media_dir is not None and cameras:  # the cameras write clip files: offload them
        cards = layout.root / "ports" / spec.bench.media_dir
        config["dailies"] = {"store": str(layout.root / "dailies"),
                             "cards": {c: str(cards / c) for c in cameras}}  # fmt: skip
    return tomli_w.dumps(config)


def how_to_connect(layout: Layout, url: str, spec: BenchSpec) -> list[str]:
    """The lines a person types in another terminal, exactly as printed."""
    cupola = "cupola"
    lights = [d.name for d in spec.devices if d.kind == "light"]
    cameras = [d.name for d in spec.devices if d.kind == "camera"]
    example = (
        f"light.set device={lights[0]} intensity_pct=40"
        if lights
        else "record scene=1 take=1"
        if cameras
        else "status"
    )
    q = shlex.quote
    return [
        f"{cupola} monitor --broker {url} --key {q(str(layout.key('director')))}",
        f"{cupola} commands --broker {url}",
        f"{cupola} cmd --broker {url} --key {q(str(layout.key('flight')))} {example}",
    ]


async def _wait_online(url: str, devices: list[str]) -> None:
    async with GroundSession(url, NODE) as session:
        await session.wait_for(lambda: session.online(*devices), ONLINE_TIMEOUT_S,
                               "every device online")  # fmt: skip


class Rig:
    """The three parts of one rig, started in order and stopped together."""

    def __init__(self, layout: Layout, spec: BenchSpec) -> None:
        self.layout = layout
        self.spec = spec
        self.group = ProcessGroup()
        self.broker = Mosquitto(layout.root / "broker", persistence=True)

    def start(self) -> str:
        layout = self.layout
        layout.logs.mkdir(parents=True, exist_ok=True)
        ensure_keys(layout)
        self.broker.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self.broker.start()
        except BrokerError as exc:
            raise UpError(f"the broker did not start: {exc}") from exc
        url = self.broker.url()
        try:
            _, entries = start_simulator(
                self.group, layout.bench, layout.root / "ports", len(self.spec.devices),
                stderr=layout.log("sim").open("ab"),
            )  # fmt: skip
        except RuntimeError as exc:
            raise UpError(f"{exc} ({layout.log('sim')})") from exc
        ports = {e["device"]: e["path"] for e in entries}
        layout.config.write_text(daemon_config(layout, self.spec, ports, url))
        try:
            load_config(layout.config)
        except ConfigError as exc:
            raise UpError(f"the generated daemon configuration is not valid: {exc}") from exc
        self.group.start(
            "daemon", cupola_argv("daemon", "--config", str(layout.config)),
            stderr=layout.log("daemon").open("ab"),
        )  # fmt: skip
        try:
            asyncio.run(_wait_online(url, list(ports)))
        except TimeoutError as exc:
            raise UpError(f"{exc}; see {layout.log('daemon')}") from exc
        return url

    def dead_part(self) -> str | None:
        """The name of a part that has stopped on its own, if any."""
        if not self.broker.running:
            return "broker"
        for name, process in self.group.processes:
            if process.poll() is not None:
                return name
        return None

    def stop(self) -> None:
        self.group.stop_all()
        self.broker.stop()


def run_up(bench: str, devices: int | None, directory: Path) -> int:
    layout = Layout(directory.resolve())
    try:
        layout.root.mkdir(parents=True, exist_ok=True)
        text = generated_bench(devices) if devices else resolve_bench(bench).read_text()
        layout.bench.write_text(text)
        spec = load_bench(layout.bench)
    except (UpError, BenchError, OSError) as exc:
        print(f"cupola up: {exc}", file=sys.stderr)
        return 2
    rig = Rig(layout, spec)
    try:
        print(f"cupola up: starting {len(spec.devices)} simulated devices in {layout.root}",
              flush=True)  # fmt: skip
        url = rig.start()  # Ctrl-C until here is a KeyboardInterrupt: stops what has started
        _announce(layout, url, spec)
        return _serve(rig)
    except UpError as exc:
        print(f"cupola up: {exc}", file=sys.stderr)
        return 1
    finally:
        rig.stop()


def _announce(layout: Layout, url: str, spec: BenchSpec) -> None:
    lines = how_to_connect(layout, url, spec)
    (layout.root / "CONNECT.txt").write_text("\n".join(lines) + "\n")
    print(f"cupola up: node {NODE!r} online with {len(spec.devices)} devices; broker {url}")
    print("In another terminal:")
    for line in lines:
        print(f"  {line}")
    print(f"(also in {layout.root / 'CONNECT.txt'}; logs in {layout.logs})")
    print("Ctrl-C stops the daemon, the simulators and the broker.", flush=True)


def _serve(rig: Rig) -> int:
    """Until Ctrl-C or SIGTERM (0), or until a part dies on its own (1, naming its log)."""
    stop = threading.Event()

    def request_stop(signum: int, _: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):  # a liveness watch, not a synchronisation
            dead = rig.dead_part()
            if dead is not None:
                log = rig.broker.log_path if dead == "broker" else rig.layout.log(dead)
                print(f"cupola up: the {dead} stopped on its own; see {log}", file=sys.stderr)
                return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("cupola up: stopping", flush=True)
    return 0
