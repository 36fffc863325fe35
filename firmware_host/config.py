"""The daemon's one configuration file (TOML), validated before anything starts.

Every error names the key and what is wrong with it, e.g.
`cupola.toml: Expected `int` >= 1200 - at `$.device[0].baud``, or
`cupola.toml: device[2].name 'cam-a' is used twice`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit

import msgspec

from protocols.timecode import FrameRate

DeviceKind = Literal["camera", "light", "pdu"]
Name = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
Positive = Annotated[float, msgspec.Meta(gt=0)]


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and the problem."""


class NodeConfig(msgspec.Struct, forbid_unknown_fields=True):
    name: Name = "cupola"
    state_dir: str = "state"  # SQLite files (shot log, events, outbox, counters)


class ProjectConfig(msgspec.Struct, forbid_unknown_fields=True):
    frame_rate: Annotated[float, msgspec.Meta(gt=0)] = 25.0  # 23.976, 24, 25, 29.97 or 30
    record_lead_ms: Annotated[int, msgspec.Meta(ge=50, le=5000)] = 400  # arm-ahead for sync


class MqttConfig(msgspec.Struct, forbid_unknown_fields=True):
    url: str = "mqtt://127.0.0.1:1883"  # mqtt://user:pass@host:port, or mqtts:// for TLS
    ca_file: str | None = None  # CA for mqtts:// (system trust store when absent)
    client_id: str | None = None  # defaults to "cupola-<node name>"
    keepalive_s: Annotated[int, msgspec.Meta(ge=2, le=3600)] = 10
    reconnect_max_s: Positive = 5.0
    state_rate_hz: Positive = 2.0  # most frequent per-device state publication


class DeviceConfig(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    kind: DeviceKind
    port: str  # device path, e.g. /dev/serial/by-id/usb-...
    baud: Annotated[int, msgspec.Meta(ge=1200, le=12_000_000)] = 115200
    poll_hz: Annotated[float, msgspec.Meta(gt=0, le=100)] = 2.0
    timeout_ms: Annotated[int, msgspec.Meta(ge=5, le=10_000)] = 200
    retries: Annotated[int, msgspec.Meta(ge=0, le=10)] = 3
    offline_after_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 3.0


class Config(msgspec.Struct, forbid_unknown_fields=True):
    node: NodeConfig = msgspec.field(default_factory=NodeConfig)
    project: ProjectConfig = msgspec.field(default_factory=ProjectConfig)
    mqtt: MqttConfig = msgspec.field(default_factory=MqttConfig)
    devices: list[DeviceConfig] = msgspec.field(name="device", default_factory=list)

    def device(self, name: str) -> DeviceConfig:
        for device in self.devices:
            if device.name == name:
                return device
        raise KeyError(name)


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ConfigError(f"broker URL {url!r} must start with mqtt:// or mqtts://")
        if not parts.hostname:
            raise ConfigError(f"broker URL {url!r} has no host")
        tls = parts.scheme == "mqtts"
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError as exc:
            raise ConfigError(f"broker URL {url!r}: {exc}") from exc
        return cls(
            host=parts.hostname,
            port=port,
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


def parse_config(data: bytes | str, origin: str = "config") -> Config:
    try:
        config = msgspec.toml.decode(data, type=Config)
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{origin}: {exc}") from exc
    return _check(config, origin)


def load_config(path: Path) -> Config:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    config = parse_config(data, str(path))
    state_dir = Path(config.node.state_dir)
    if not state_dir.is_absolute():
        config.node.state_dir = str((path.parent / state_dir).resolve())
    return config


def _check(config: Config, origin: str) -> Config:
    seen: dict[str, int] = {}
    for index, device in enumerate(config.devices):
        if device.name in seen:
            raise ConfigError(
                f"{origin}: device[{index}].name {device.name!r} is used twice "
                f"(first at device[{seen[device.name]}])"
            )
        seen[device.name] = index
    try:
        BrokerAddress.parse(config.mqtt.url)
    except ConfigError as exc:
        raise ConfigError(f"{origin}: mqtt.url: {exc}") from exc
    try:
        FrameRate.from_fps(config.project.frame_rate)
    except ValueError as exc:
        raise ConfigError(f"{origin}: project.frame_rate: {exc}") from exc
    if config.mqtt.ca_file is not None and not Path(config.mqtt.ca_file).is_file():
        raise ConfigError(f"{origin}: mqtt.ca_file {config.mqtt.ca_file!r} is not a file")
    return config
