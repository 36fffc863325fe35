"""The daemon's one configuration file (TOML), validated before anything starts.

Every error names the key and what is wrong with it, e.g.
`cupola.toml: Expected `int` >= 1200 - at `$.device[0].baud``, or
`cupola.toml: device[2].name 'cam-a' is used twice`.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit

import msgspec

from firmware_host.budget.models import CameraModel, LightModel, PduModel
from protocols.timecode import FrameRate

DeviceKind = Literal["camera", "light", "pdu"]
Name = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
Positive = Annotated[float, msgspec.Meta(gt=0)]


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and the problem."""


class ConfigUnreadable(ConfigError):
    """The file itself cannot be read (missing, a folder, no permission)."""


class NodeConfig(msgspec.Struct, forbid_unknown_fields=True):
    name: Name = "cupola"
    state_dir: str = "state"  # SQLite files (shot log, events, outbox, counters)


class ProjectConfig(msgspec.Struct, forbid_unknown_fields=True):
    frame_rate: Annotated[float, msgspec.Meta(gt=0)] = 25.0  # 23.976, 24, 25, 29.97 or 30
    record_lead_ms: Annotated[int, msgspec.Meta(ge=50, le=5000)] = 400  # arm-ahead for sync
    drift_check_s: Annotated[float, msgspec.Meta(ge=1, le=3600)] = 10.0  # timecode read interval
    drift_limit_frames: Annotated[float, msgspec.Meta(gt=0, le=10)] = 0.5  # event past this
    auto_rejam: bool = True  # re-jam a drifted camera when it is not rolling


class FailsafeConfig(msgspec.Struct, forbid_unknown_fields=True):
    """What devices do when the daemon falls silent (SPEC section 12)."""

    host_timeout_s: Annotated[float, msgspec.Meta(ge=0, le=60)] = 10.0  # 0 disables
    light_pct: Annotated[float, msgspec.Meta(ge=0, le=100)] = 0.0  # lights fade to this


class GroupConfig(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    cameras: Annotated[list[str], msgspec.Meta(min_length=1)]


class Band(msgspec.Struct, forbid_unknown_fields=True):
    """Yellow and red thresholds; for a low limit (media free) red is below yellow."""

    yellow: float
    red: float


class LimitsConfig(msgspec.Struct, forbid_unknown_fields=True):
    camera_temperature_c: Band = msgspec.field(default_factory=lambda: Band(60.0, 68.0))
    light_temperature_c: Band = msgspec.field(default_factory=lambda: Band(70.0, 85.0))
    media_free_pct: Band = msgspec.field(default_factory=lambda: Band(20.0, 5.0))
    link_error_rate: Band = msgspec.field(default_factory=lambda: Band(0.001, 0.01))
    hysteresis_fraction: Annotated[float, msgspec.Meta(ge=0, le=0.5)] = 0.05


class MqttConfig(msgspec.Struct, forbid_unknown_fields=True):
    url: str = "mqtt://127.0.0.1:1883"  # mqtt://user:pass@host:port, or mqtts:// for TLS
    ca_file: str | None = None  # CA for mqtts:// (system trust store when absent)
    client_id: str | None = None  # defaults to "cupola-<node name>"
    keepalive_s: Annotated[int, msgspec.Meta(ge=2, le=3600)] = 10
    reconnect_max_s: Positive = 5.0
    state_rate_hz: Positive = 2.0  # most frequent per-device state publication
    # With an onboard broker bridged to the ground: the bridge's notification topic, so the
    # stream waits in the outbox while the bridge is down (GROUND.md, "Loss of signal").
    bridge_state_topic: str | None = None


class CapChange(msgspec.Struct, forbid_unknown_fields=True):
    at: datetime.datetime  # TOML date-time, e.g. 2026-11-27T14:00:00Z
    cap_w: Annotated[float, msgspec.Meta(gt=0)]
    until: datetime.datetime | None = None  # back to the base cap then
    reason: str = "planned cap change"


class PowerConfig(msgspec.Struct, forbid_unknown_fields=True):
    cap_w: Annotated[float, msgspec.Meta(gt=0)] = 300.0  # the film's allocation (reference)
    reserve_pct: Annotated[float, msgspec.Meta(ge=0, lt=50)] = 10.0  # kept free; shed margin
    shed_deadline_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 2.0
    check_interval_s: Annotated[float, msgspec.Meta(ge=0.02, le=5)] = 0.2
    cap_lead_s: Annotated[float, msgspec.Meta(ge=0, le=600)] = 5.0  # shed before a planned cut
    stop_cameras_when_shedding: bool = False  # else rolling cameras never stop for power
    measurement_max_age_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 3.0
    timeline: list[CapChange] = msgspec.field(default_factory=list)


class ContactConfig(msgspec.Struct, forbid_unknown_fields=True):
    start: Annotated[str, msgspec.Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]  # HH:MM UTC daily
    minutes: Annotated[float, msgspec.Meta(gt=0, le=1440)]


class DataConfig(msgspec.Struct, forbid_unknown_fields=True):
    take_fit: Literal["refuse", "warn"] = "refuse"  # a take whose planned length does not fit
    shoot_days: Annotated[int, msgspec.Meta(ge=1, le=365)] = 12
    shoot_start: datetime.date | None = None  # default: the day the daemon first starts
    downlink_gb_per_day: Annotated[float, msgspec.Meta(gt=0)] = 5.0  # the film's allocation
    link_mbps: Annotated[float, msgspec.Meta(gt=0)] = 20.0  # most the film may use in a window
    proxy_kbps: Annotated[float, msgspec.Meta(gt=0)] = 10_000.0  # proxies of circled takes
    contact: list[ContactConfig] = msgspec.field(default_factory=list)  # none: always in contact


class OutboxConfig(msgspec.Struct, forbid_unknown_fields=True):
    max_mb: Annotated[float, msgspec.Meta(gt=0)] = 64.0  # routine samples thinned beyond this
    min_free_mb: Annotated[float, msgspec.Meta(ge=0)] = 100.0  # ... or below this free disk


class TelemetryConfig(msgspec.Struct, forbid_unknown_fields=True):
    interval_s: Annotated[float, msgspec.Meta(ge=0.01, le=3600)] = 5.0  # routine samples


class AuthConfig(msgspec.Struct, forbid_unknown_fields=True):
    keyring: str = "keyring.json"  # keys allowed to command this node (`cupola keys`)
    max_skew_s: Annotated[float, msgspec.Meta(ge=0, le=600)] = 30.0
    max_lifetime_s: Annotated[float, msgspec.Meta(gt=0, le=86400)] = 3600.0
    arm_window_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 60.0  # hazardous confirm


class DeviceConfig(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    kind: DeviceKind
    port: str  # device path, e.g. /dev/serial/by-id/usb-...
    baud: Annotated[int, msgspec.Meta(ge=1200, le=12_000_000)] = 115200
    poll_hz: Annotated[float, msgspec.Meta(gt=0, le=100)] = 2.0
    timeout_ms: Annotated[int, msgspec.Meta(ge=5, le=10_000)] = 200
    retries: Annotated[int, msgspec.Meta(ge=0, le=10)] = 3
    offline_after_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 3.0
    pdu_channel: Annotated[int, msgspec.Meta(ge=0, le=15)] | None = None  # measured draw
    priority: Annotated[int, msgspec.Meta(ge=0, le=1000)] | None = None  # shed lowest first
    shed_floor_pct: Annotated[float, msgspec.Meta(ge=0, le=100)] = 0.0  # lights: dim no lower
    model: dict[str, float] = msgspec.field(default_factory=dict)  # draw model overrides


class Config(msgspec.Struct, forbid_unknown_fields=True):
    node: NodeConfig = msgspec.field(default_factory=NodeConfig)
    project: ProjectConfig = msgspec.field(default_factory=ProjectConfig)
    failsafe: FailsafeConfig = msgspec.field(default_factory=FailsafeConfig)
    limits: LimitsConfig = msgspec.field(default_factory=LimitsConfig)
    mqtt: MqttConfig = msgspec.field(default_factory=MqttConfig)
    power: PowerConfig = msgspec.field(default_factory=PowerConfig)
    data: DataConfig = msgspec.field(default_factory=DataConfig)
    outbox: OutboxConfig = msgspec.field(default_factory=OutboxConfig)
    telemetry: TelemetryConfig = msgspec.field(default_factory=TelemetryConfig)
    auth: AuthConfig = msgspec.field(default_factory=AuthConfig)
    devices: list[DeviceConfig] = msgspec.field(name="device", default_factory=list)
    groups: list[GroupConfig] = msgspec.field(name="group", default_factory=list)

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
        if "://" not in url:
            hint = f"write mqtt://{url}" if url.isprintable() else "write mqtt://HOST:PORT"
            raise ConfigError(f"broker URL {url!r} has no scheme: {hint} (mqtts:// for TLS)")
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
    except (UnicodeDecodeError, msgspec.DecodeError) as exc:
        raise ConfigError(f"{origin}: {exc}") from exc
    return _check(config, origin)


def load_config(path: Path) -> Config:
    """Parse, check, resolve relative paths against the file's folder, check files exist."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigUnreadable(f"{path}: cannot read: {exc.strerror}") from exc
    config = parse_config(data, str(path))
    config.node.state_dir = str(_resolve(path, config.node.state_dir))
    config.auth.keyring = str(_resolve(path, config.auth.keyring))
    if config.mqtt.ca_file is not None:
        config.mqtt.ca_file = str(_resolve(path, config.mqtt.ca_file))
        if not Path(config.mqtt.ca_file).is_file():
            raise ConfigError(f"{path}: mqtt.ca_file {config.mqtt.ca_file!r} is not a file")
    if not Path(config.auth.keyring).is_file():
        raise ConfigError(
            f"{path}: auth.keyring {config.auth.keyring!r} is not a file; create keys with "
            "`cupola keys create --role ROLE --id ID --keyring FILE --out KEYFILE`"
        )
    return config


def draw_model(device: DeviceConfig) -> LightModel | CameraModel | PduModel:
    """The device's draw model: defaults from ../shared/reference, then its overrides."""
    kind = {"light": LightModel, "camera": CameraModel, "pdu": PduModel}[device.kind]
    model: LightModel | CameraModel | PduModel = msgspec.convert(device.model, type=kind)
    return model


def _resolve(config_path: Path, value: str) -> Path:
    candidate = Path(value)
    return candidate if candidate.is_absolute() else (config_path.parent / candidate).resolve()


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
    pdus = [d.name for d in config.devices if d.kind == "pdu"]
    for index, device in enumerate(config.devices):
        if device.pdu_channel is not None and len(pdus) != 1:
            raise ConfigError(
                f"{origin}: device[{index}].pdu_channel needs exactly one PDU configured "
                f"(found {len(pdus)})"
            )
        try:
            draw_model(device)
        except (msgspec.ValidationError, TypeError) as exc:
            raise ConfigError(f"{origin}: device[{index}].model: {exc}") from exc
    cameras = {d.name for d in config.devices if d.kind == "camera"}
    group_names: set[str] = set()
    for index, group in enumerate(config.groups):
        if group.name in group_names:
            raise ConfigError(f"{origin}: group[{index}].name {group.name!r} is used twice")
        group_names.add(group.name)
        for camera in group.cameras:
            if camera not in cameras:
                raise ConfigError(
                    f"{origin}: group[{index}].cameras: {camera!r} is not a configured camera "
                    f"(cameras: {sorted(cameras)})"
                )
    limits = config.limits
    for key in ("camera_temperature_c", "light_temperature_c", "link_error_rate"):
        band: Band = getattr(limits, key)
        if band.red <= band.yellow:
            raise ConfigError(f"{origin}: limits.{key}: red ({band.red}) must be above yellow")
    if limits.media_free_pct.red >= limits.media_free_pct.yellow:
        raise ConfigError(f"{origin}: limits.media_free_pct: red must be below yellow")
    try:
        FrameRate.from_fps(config.project.frame_rate)
    except ValueError as exc:
        raise ConfigError(f"{origin}: project.frame_rate: {exc}") from exc
    return config
