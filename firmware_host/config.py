"""The daemon's one configuration file (TOML), validated before anything starts.

Every problem is reported at once, each naming the key and saying what is wrong in words
the crew reads (firmware_host/config_check.py), e.g.
`device[0].baud: 12 is not a whole number from 1200 to 12000000`, or
`device[2].name 'cam-a' is used twice (first at device[0])`.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit

import msgspec

from firmware_host.budget.models import CameraModel, LightModel, PduModel
from firmware_host.config_check import problems_in, usable
from firmware_host.dailies.config import DailiesConfig
from firmware_host.gear.capabilities import Protocol
from firmware_host.gear.settings import GearConfig, gear_problems
from protocols.messages.light import CCT_MAX_K, CCT_MIN_K
from protocols.timecode import FrameRate

DeviceKind = Literal["camera", "light", "pdu"]
Name = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$",
        description="a name of up to 32 lower-case letters, digits, - or _ (not first)",
    ),
]
Positive = Annotated[float, msgspec.Meta(gt=0)]


class ConfigError(Exception):
    """The configuration cannot be used; each problem names the key and says what is wrong."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = problems if problems is not None else [message]
        super().__init__(message)

    @classmethod
    def of(cls, origin: str, problems: list[str]) -> ConfigError:
        if len(problems) == 1:
            return cls(f"{origin}: {problems[0]}", problems)
        listed = "".join(f"\n  {problem}" for problem in problems)
        return cls(f"{origin}: {len(problems)} problems:{listed}", problems)


class ConfigUnreadable(ConfigError):
    """The file itself cannot be read (missing, a folder, no permission)."""


OUTBOX_FILE = "outbox.db"  # in the state directory: everything queued for the ground


class NodeConfig(msgspec.Struct, forbid_unknown_fields=True):
    name: Name = "cupola"
    state_dir: str = "state"  # SQLite files (shot log, events, outbox, counters)
    tap_socket: str = "tap.sock"  # link tap for `cupola decode --tap` (relative: to state_dir)


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
    # Stream messages in flight (published, not yet acknowledged by the broker): more drains
    # a backlog faster after a loss of signal, at the cost of the broker's inflight memory.
    publish_window: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 200
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
    restore_interval_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 1.0  # shed lights back
    timeline: list[CapChange] = msgspec.field(default_factory=list)


class ContactConfig(msgspec.Struct, forbid_unknown_fields=True):
    start: Annotated[  # daily, UTC
        str,
        msgspec.Meta(
            pattern=r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$",
            description="a time of day as HH:MM or HH:MM:SS, 00:00 to 23:59 UTC",
        ),
    ]
    minutes: Annotated[float, msgspec.Meta(gt=0, le=1440)]


class HousekeepingConfig(msgspec.Struct, forbid_unknown_fields=True):
    """The housekeeping link class: events, alarms, results, samples (GROUND.md)."""

    kbps: Positive | None = None  # its allocation's rate; none: as fast as the link goes
    mb_per_day: Positive | None = None  # its daily cap; none: no cap
    windowed: bool = False  # true where the segment's links are windowed (contact windows)


class DataConfig(msgspec.Struct, forbid_unknown_fields=True):
    take_fit: Literal["refuse", "warn"] = "refuse"  # a take whose planned length does not fit
    shoot_days: Annotated[int, msgspec.Meta(ge=1, le=365)] = 12
    shoot_start: datetime.date | None = None  # default: the day the daemon first starts
    downlink_gb_per_day: Annotated[float, msgspec.Meta(gt=0)] = 5.0  # the film's allocation
    link_mbps: Annotated[float, msgspec.Meta(gt=0)] = 20.0  # most the film may use in a window
    proxy_kbps: Annotated[float, msgspec.Meta(gt=0)] = 10_000.0  # proxies of circled takes
    contact: list[ContactConfig] = msgspec.field(default_factory=list)  # none: always in contact
    housekeeping: HousekeepingConfig = msgspec.field(default_factory=HousekeepingConfig)


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
    # command name -> "key" (confirm with another key than the one that armed) or "role"
    # (another key of another role); commands not listed may be confirmed by the same key
    two_person: dict[str, Literal["key", "role"]] = msgspec.field(default_factory=dict)
    # unauthenticated messages are not answered: one event sums them up at most this often
    refusal_summary_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 10.0
    # who may command: "off" every key within its role; "node" the one console holding
    # authority; "role" one per role (firmware_host/groundlink/authority.py)
    authority: Literal["off", "node", "role"] = "off"


class PresetLight(msgspec.Struct, forbid_unknown_fields=True):
    intensity_pct: Annotated[float, msgspec.Meta(ge=0, le=100)]
    cct_k: Annotated[int, msgspec.Meta(ge=CCT_MIN_K, le=CCT_MAX_K)] | None = None  # else kept


class PresetConfig(msgspec.Struct, forbid_unknown_fields=True):
    """A named look: several lights set together by `light.preset` (OPERATIONS.md)."""

    name: Name
    lights: Annotated[dict[str, PresetLight], msgspec.Meta(min_length=1)]
    fade_s: Annotated[float, msgspec.Meta(ge=0, le=600)] = 0.0


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
    protocol: Protocol = "native"  # or sony9pin, enttec-dmx, modbus-rtu (real gear)
    gear: GearConfig = msgspec.field(default_factory=GearConfig)  # that protocol's settings


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
    presets: list[PresetConfig] = msgspec.field(name="preset", default_factory=list)
    dailies: DailiesConfig | None = None  # clip files offloaded, proxies sent (dailies/)

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
    """The configuration, or a ConfigError listing every problem in it."""
    config, problems, _ = _parsed(data, origin)
    if problems:
        raise ConfigError.of(origin, problems)
    return config


def load_config(path: Path) -> Config:
    """A daemon's file: parsed and checked, relative paths resolved against the file's folder,
    the files it names checked, and at least one device (an empty file drives nothing)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigUnreadable(f"{path}: cannot read: {exc.strerror}") from exc
    config, problems, devices_given = _parsed(data, str(path))
    if not devices_given:  # a file's wrong devices are reported as wrong, not as missing
        problems.insert(0, NO_DEVICES)
    config.node.state_dir = str(_resolve(path, config.node.state_dir))
    config.auth.keyring = str(_resolve(path, config.auth.keyring))
    if config.dailies is not None:
        config.dailies.store = str(_resolve(path, config.dailies.store))
        config.dailies.cards = {c: str(_resolve(path, f)) for c, f in config.dailies.cards.items()}
    if config.mqtt.ca_file is not None:
        config.mqtt.ca_file = str(_resolve(path, config.mqtt.ca_file))
        if not Path(config.mqtt.ca_file).is_file():
            problems.append(f"mqtt.ca_file {config.mqtt.ca_file!r} is not a file")
    if not Path(config.auth.keyring).is_file():
        problems.append(
            f"auth.keyring {config.auth.keyring!r} is not a file; create keys with "
            "`cupola keys create --role ROLE --id ID --keyring FILE --out KEYFILE`"
        )
    if problems:
        raise ConfigError.of(str(path), problems)
    return config


NO_DEVICES = (
    "no [[device]] is configured: the daemon would have nothing to drive "
    "(each [[device]] needs a name, a kind and a port)"
)


def _parsed(data: bytes | str, origin: str) -> tuple[Config, list[str], int]:
    """The config from what is right in the file, every problem, and how many [[device]]
    tables the file has (usable or not)."""
    try:
        raw = msgspec.toml.decode(data)
    except (UnicodeDecodeError, msgspec.DecodeError) as exc:
        raise ConfigError(f"{origin}: not a TOML file: {exc}") from exc
    problems = problems_in(raw, Config)
    left, kept = usable(raw, Config)  # what is right is still checked for consistency
    try:
        config = msgspec.convert(left, type=Config)
    except msgspec.ValidationError as exc:  # the walk above should have said why
        raise ConfigError.of(origin, [*problems, str(exc)]) from exc
    problems += semantic_problems(config, _Indexes(kept))
    listed = raw.get("device")
    return config, problems, len(listed) if isinstance(listed, list) else 0


def draw_model(device: DeviceConfig) -> LightModel | CameraModel | PduModel:
    """The device's draw model: defaults from ../shared/reference, then its overrides."""
    kind = {"light": LightModel, "camera": CameraModel, "pdu": PduModel}[device.kind]
    model: LightModel | CameraModel | PduModel = msgspec.convert(device.model, type=kind)
    return model


def _resolve(config_path: Path, value: str) -> Path:
    candidate = Path(value)
    return candidate if candidate.is_absolute() else (config_path.parent / candidate).resolve()


def preset_problems(config: Config) -> list[str]:
    """Each preset names lights that exist, and no two presets share a name."""
    lights = sorted(d.name for d in config.devices if d.kind == "light")
    problems = []
    names: set[str] = set()
    for index, preset in enumerate(config.presets):
        if preset.name in names:
            problems.append(f"preset[{index}].name {preset.name!r} is used twice")
        names.add(preset.name)
        problems += [
            f"preset[{index}].lights: {light!r} is not a configured light (lights: {lights})"
            for light in preset.lights
            if light not in lights
        ]
    return problems


@dataclass(frozen=True)
class _Indexes:
    """Where each entry of a list was in the file (entries with a wrong setting left out)."""

    kept: dict[str, list[int]]

    def __call__(self, path: str, index: int) -> str:
        original = self.kept.get(path)
        return f"{path}[{original[index] if original else index}]"


def semantic_problems(config: Config, at: _Indexes | None = None) -> list[str]:
    """What well-typed settings still get wrong together: names, ports, bands, times."""
    at = at or _Indexes({})
    problems = _device_problems(config, at) + _timeline_problems(config.power.timeline, at)
    problems += preset_problems(config)
    try:
        BrokerAddress.parse(config.mqtt.url)
    except ConfigError as exc:
        problems.append(f"mqtt.url: {exc}")
    cameras = {d.name for d in config.devices if d.kind == "camera"}
    group_names: dict[str, int] = {}
    for index, group in enumerate(config.groups):
        if group.name in group_names:
            problems.append(f"{at('group', index)}.name {group.name!r} is used twice "
                            f"(first at {at('group', group_names[group.name])})")  # fmt: skip
        group_names.setdefault(group.name, index)
        for camera in group.cameras:
            if camera not in cameras:
                known = ", ".join(sorted(cameras)) or "none"
                problems.append(f"{at('group', index)}.cameras: {camera!r} is not a configured "
                                f"camera (cameras: {known})")  # fmt: skip
    limits = config.limits
    for key in ("camera_temperature_c", "light_temperature_c", "link_error_rate"):
        band: Band = getattr(limits, key)
        if band.red <= band.yellow:
            problems.append(f"limits.{key}: red ({band.red:g}) must be above yellow "
                            f"({band.yellow:g})")  # fmt: skip
    if limits.media_free_pct.red >= limits.media_free_pct.yellow:
        problems.append(f"limits.media_free_pct: red ({limits.media_free_pct.red:g}) must be "
                        f"below yellow ({limits.media_free_pct.yellow:g})")  # fmt: skip
    try:
        FrameRate.from_fps(config.project.frame_rate)
    except ValueError as exc:
        problems.append(f"project.frame_rate: {exc}")
    return problems


def _device_problems(config: Config, at: _Indexes) -> list[str]:
    problems = []
    names: dict[str, int] = {}
    ports: dict[str, int] = {}
    pdus = [d.name for d in config.devices if d.kind == "pdu"]
    for index, device in enumerate(config.devices):
        if device.name in names:
            problems.append(f"{at('device', index)}.name {device.name!r} is used twice "
                            f"(first at {at('device', names[device.name])})")  # fmt: skip
        names.setdefault(device.name, index)
        shared = device.protocol == config.devices[ports.get(device.port, index)].protocol
        if device.port in ports and not (shared and device.protocol == "enttec-dmx"):
            first = ports[device.port]
            problems.append(f"{at('device', index)}.port {device.port!r} is already "
                            f"{at('device', first)}'s ({config.devices[first].name}); "
                            "two devices cannot share a port")  # fmt: skip
        ports.setdefault(device.port, index)
        if device.pdu_channel is not None and len(pdus) != 1:
            problems.append(f"{at('device', index)}.pdu_channel needs exactly one PDU configured "
                            f"(found {len(pdus)})")  # fmt: skip
        kind = {"light": LightModel, "camera": CameraModel, "pdu": PduModel}[device.kind]
        problems += problems_in(device.model, kind, f"{at('device', index)}.model")
    where = [at("device", index) for index in range(len(config.devices))]
    return problems + gear_problems(config.devices, where)


def _timeline_problems(timeline: list[CapChange], at: _Indexes) -> list[str]:
    """Times with a zone, each window forwards, no two changes at once."""
    problems = []
    spans: list[tuple[int, datetime.datetime, datetime.datetime | None]] = []
    for index, change in enumerate(timeline):
        where = at("power.timeline", index)
        naive = [k for k in ("at", "until") if (t := getattr(change, k)) and t.tzinfo is None]
        if naive:
            problems.append(f"{where}.{naive[0]} has no time zone; write it in UTC, e.g. "
                            "2026-11-27T14:00:00Z")  # fmt: skip
            continue
        if change.until is not None and change.until <= change.at:
            problems.append(f"{where}: until ({change.until:%Y-%m-%d %H:%M:%S %Z}) is not after "
                            f"at ({change.at:%Y-%m-%d %H:%M:%S %Z})")  # fmt: skip
            continue
        spans.append((index, change.at, change.until))
    for i, (a, a_at, a_until) in enumerate(spans):
        for b, b_at, b_until in spans[i + 1 :]:
            if _overlap(a_at, a_until, b_at, b_until):
                problems.append(
                    f"{at('power.timeline', b)} overlaps {at('power.timeline', a)}: a planned "
                    "change may not start inside another's window"
                )
    return problems


def _overlap(
    a_at: datetime.datetime,
    a_until: datetime.datetime | None,
    b_at: datetime.datetime,
    b_until: datetime.datetime | None,
) -> bool:
    """A window is [at, until); a change without `until` is the instant `at`."""
    if a_until is None and b_until is None:
        return a_at == b_at
    if a_until is None:
        return b_at <= a_at < (b_until or b_at)
    if b_until is None:
        return a_at <= b_at < a_until
    return a_at < b_until and b_at < a_until
