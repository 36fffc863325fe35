"""A bench: the devices a bench file lists, wired to a PDU, with faults injected on cue.

Bench file (TOML):

    [bench]
    speed = 1.0          # physics time scale (timecode and link timing stay real)
    seed = 7
    media_dir = "cards"  # optional: each camera's clips as real files in media_dir/<name>
                         # (relative: to the run directory; hil/media.py)
    media_scale = 1e-4   # their bitrate: the nominal one times this
    spin_below_us = 300  # optional: pacing waits shorter than this are spun, not slept (a
                         # UART is punctual; a sleeping simulator wakes late): a core's cost

    [[device]]
    name = "cam-a"
    kind = "camera"      # camera | light | pdu
    protocol = "native"  # or sony9pin (camera), enttec-dmx (light), modbus-rtu (pdu): hil/gear
    baud = 115200        # omit for an unpaced link
    pdu_channel = 0      # powered from this channel of the bench's PDU
    model = { drift_ppm = 60.0 }      # overrides of the model's parameters
    faults = { ber = 1e-5 }           # faults active from the start

    [[fault]]            # scheduled fault: at seconds after start
    at = 30.0
    device = "cam-a"
    fault = "unplug"
    duration = 5.0       # undo after this long (optional)

Every fault applied, scheduled or through the control socket, is logged with wall and
monotonic timestamps so tests can line effects up with causes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from hil.device import SimDevice
from hil.devices.camera import CameraDevice
from hil.devices.light import LightDevice
from hil.devices.pdu import PduDevice
from hil.fault_names import DEVICE_FAULTS, LINE_FAULTS
from hil.gear.assemble import GearAssembly, GearError, GearSpec, Protocol
from hil.gear.base import GearDevice
from hil.gear.fixture import DmxFixture
from hil.gear.meter import ModbusMeterPdu
from hil.media import DEFAULT_SCALE, Card
from hil.models.base import PhysicsClock
from hil.models.camera import CameraModel, CameraParams
from hil.models.light import LightModel, LightParams
from hil.models.pdu import PduModel, PduParams

log = logging.getLogger(__name__)

DeviceKind = Literal["camera", "light", "pdu"]


class BenchError(Exception):
    """A bench file or a fault request that cannot be carried out; the message says why."""


class DeviceSpec(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
    kind: DeviceKind
    baud: Annotated[int, msgspec.Meta(ge=1200, le=12_000_000)] | None = None
    pdu_channel: Annotated[int, msgspec.Meta(ge=0, le=15)] | None = None
    seed: int | None = None
    model: dict[str, Any] = msgspec.field(default_factory=dict)
    faults: dict[str, Any] = msgspec.field(default_factory=dict)
    protocol: Protocol = "native"
    gear: dict[str, Any] = msgspec.field(default_factory=dict)  # hil/gear/assemble.py GearSpec


class ScheduledFault(msgspec.Struct, forbid_unknown_fields=True):
    at: Annotated[float, msgspec.Meta(ge=0)]
    device: str
    fault: str
    value: Any = True
    duration: Annotated[float, msgspec.Meta(gt=0)] | None = None


class BenchSettings(msgspec.Struct, forbid_unknown_fields=True):
    speed: Annotated[float, msgspec.Meta(gt=0, le=1000)] = 1.0
    seed: int = 1
    media_dir: str | None = None  # cameras write clip files here, a folder per camera
    media_scale: Annotated[float, msgspec.Meta(gt=0, le=1)] = DEFAULT_SCALE
    spin_below_us: Annotated[float, msgspec.Meta(ge=0, le=10_000)] = 0.0  # 0: never spin


class BenchSpec(msgspec.Struct, forbid_unknown_fields=True):
    bench: BenchSettings = msgspec.field(default_factory=BenchSettings)
    devices: list[DeviceSpec] = msgspec.field(name="device", default_factory=list)
    faults: list[ScheduledFault] = msgspec.field(name="fault", default_factory=list)


def load_bench(path: Path) -> BenchSpec:
    try:
        spec = msgspec.toml.decode(path.read_bytes(), type=BenchSpec)
    except (OSError, UnicodeDecodeError, msgspec.DecodeError) as exc:
        raise BenchError(f"{path}: {exc}") from exc
    return check_bench(spec, str(path))


def check_bench(spec: BenchSpec, origin: str = "bench") -> BenchSpec:
    names = [d.name for d in spec.devices]
    for name in names:
        if names.count(name) > 1:
            raise BenchError(f"{origin}: device name {name!r} is used twice")
    pdus = [d for d in spec.devices if d.kind == "pdu"]
    if len(pdus) > 1:
        raise BenchError(f"{origin}: a bench has at most one PDU, found {len(pdus)}")
    for i, d in enumerate(spec.devices):
        if d.pdu_channel is not None and not pdus:
            raise BenchError(f"{origin}: device[{i}].pdu_channel set but the bench has no PDU")
    for i, f in enumerate(spec.faults):
        if f.device not in names:
            raise BenchError(f"{origin}: fault[{i}].device {f.device!r} is not on the bench")
    return spec


@dataclasses.dataclass
class FaultRecord:
    wall: float
    monotonic: float
    device: str
    fault: str
    value: Any


def _with_overrides(params: Any, overrides: dict[str, Any], where: str) -> Any:
    known = {f.name for f in dataclasses.fields(params)}
    for key in overrides:
        if key not in known:
            raise BenchError(f"{where}: unknown model parameter {key!r}; known: {sorted(known)}")
    return dataclasses.replace(params, **overrides)


class Bench:
    """Runs every device of a bench spec inside one event loop."""

    def __init__(self, spec: BenchSpec, run_dir: Path) -> None:
        self.spec = spec
        self.run_dir = run_dir
        self.clock = PhysicsClock(spec.bench.speed)
        self.devices: dict[str, SimDevice | GearDevice] = {}
        self.gear = GearAssembly(run_dir, self.clock)
        self.fault_log: list[FaultRecord] = []
        self.pdu: PduDevice | ModbusMeterPdu | None = None
        self._undo_tasks: set[asyncio.Task[None]] = set()
        self._schedule_task: asyncio.Task[None] | None = None
        self._started_at = 0.0
        self.on_fault: Callable[[FaultRecord], None] | None = None

    def _build(self) -> None:
        rng = random.Random(self.spec.bench.seed)
        for spec in self.spec.devices:
            seed = spec.seed if spec.seed is not None else rng.getrandbits(32)
            device_rng = random.Random(seed)
            where = f"device {spec.name!r}"
            path = self.run_dir / spec.name
            device: SimDevice | GearDevice
            if spec.protocol != "native":
                self._build_gear(spec, device_rng)
                continue
            if spec.kind == "camera":
                params = _with_overrides(CameraParams(), spec.model, where)
                camera = CameraModel(params, self.clock)
                device = CameraDevice(
                    spec.name, camera, path, baud=spec.baud, rng=device_rng
                )  # fmt: skip
                if self.spec.bench.media_dir is not None:
                    folder = self.run_dir / self.spec.bench.media_dir / spec.name
                    camera.card = Card(folder, spec.name, self.spec.bench.media_scale)
            elif spec.kind == "light":
                lparams = _with_overrides(LightParams(), spec.model, where)
                device = LightDevice(
                    spec.name, LightModel(lparams, self.clock), path,
                    baud=spec.baud, rng=device_rng
                )  # fmt: skip
            else:
                pparams = _with_overrides(PduParams(), spec.model, where)
                device = PduDevice(
                    spec.name, PduModel(pparams, self.clock, device_rng), path,
                    baud=spec.baud, rng=device_rng
                )  # fmt: skip
                self.pdu = device
            self.devices[spec.name] = device
        for widget in self.gear.widgets(rng):
            self.devices[widget.name] = widget
        for spec in self.spec.devices:
            if spec.pdu_channel is not None:
                assert self.pdu is not None
                if spec.pdu_channel >= len(self.pdu.model.channels):
                    raise BenchError(
                        f"device {spec.name!r}: pdu_channel {spec.pdu_channel} does not exist"
                    )
                load = self.gear.fixtures.get(spec.name) or self.devices[spec.name]
                self.pdu.model.wire(spec.pdu_channel, load)

    def _build_gear(self, spec: DeviceSpec, rng: random.Random) -> None:
        where = f"device {spec.name!r}"
        base = {"camera": CameraParams, "light": LightParams, "pdu": PduParams}[spec.kind]()
        try:
            gear = msgspec.convert({"protocol": spec.protocol, **spec.gear}, type=GearSpec)
            built = self.gear.build(
                spec.name,
                spec.kind,
                gear,
                params=_with_overrides(base, spec.model, where),
                baud=spec.baud,
                rng=rng,
            )
        except (msgspec.ValidationError, GearError) as exc:
            raise BenchError(f"{where}: {exc}") from exc
        if built is not None:
            self.devices[spec.name] = built
            if isinstance(built, ModbusMeterPdu):
                self.pdu = built

    async def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._build()
        for device in self.devices.values():
            device.start()
        self._started_at = time.monotonic()
        for spec in self.spec.devices:
            for fault, value in spec.faults.items():
                self.apply_fault(spec.name, fault, value)
        if self.spec.faults:
            self._schedule_task = asyncio.create_task(self._run_schedule())

    def cards(self) -> list[Card]:
        return [
            d.model.card
            for d in self.devices.values()
            if isinstance(d, CameraDevice) and isinstance(d.model.card, Card)
        ]

    async def stop(self) -> None:
        for card in self.cards():
            await card.settle()
        tasks = [t for t in (self._schedule_task, *self._undo_tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for device in self.devices.values():
            await device.stop()

    def announce(self) -> list[dict[str, str]]:
        """One line per device the daemon drives, as `cupola sim` prints them (a DMX fixture's
        path is its widget's: the fixtures share the widget's port)."""
        control = str(self.run_dir / "control.sock")
        lines = []
        for d in self.devices.values():
            protocol = getattr(d, "protocol", "native")
            fixtures = [n for n, w in self.gear.widget_of.items() if w == d.name]
            for name in fixtures or [d.name]:
                lines.append(
                    {
                        "device": name,
                        "kind": d.device_class.name.lower(),
                        "protocol": protocol,
                        "path": str(d.path),
                        "control": control,
                    }
                )
        return lines

    def device(self, name: str) -> SimDevice | GearDevice:
        """A device by name; a DMX fixture's faults on the line land on its widget."""
        try:
            return self.devices[self.gear.widget_of.get(name, name)]
        except KeyError:
            raise BenchError(f"no device {name!r}; the bench has {sorted(self.devices)}") from None

    def apply_fault(
        self, name: str, fault: str, value: Any = True, duration: float | None = None
    ) -> FaultRecord:
        """Switch a fault on (or off, with a false value); undo it after `duration` seconds."""
        fixture = self.gear.fixtures.get(name)
        if fixture is not None and fault in ("power", "cooling"):
            undo = self._apply_fixture(fixture, fault, value)
        else:
            undo = self._apply(self.device(name), fault, value)
        record = self._record(name, fault, value)
        if duration is not None and undo is not None:
            task = asyncio.create_task(self._undo_later(name, fault, undo, duration))
            self._undo_tasks.add(task)
            task.add_done_callback(self._undo_tasks.discard)
        return record

    def _apply_fixture(self, fixture: DmxFixture, fault: str, value: Any) -> Any:
        if fault == "power":
            before = fixture.powered
            self._set_power(fixture, bool(value))
            return before
        fixture.model.advance()
        before_cooling = fixture.model.cooling_factor
        fixture.model.cooling_factor = float(value)
        return before_cooling

    def _apply(self, device: SimDevice | GearDevice, fault: str, value: Any) -> Any:
        """Carry out one fault; returns the value that undoes it, None for one-shot faults."""
        if fault in LINE_FAULTS:
            before = getattr(device.link.faults, fault)
            device.link.set_faults(**{fault: value})
            return before
        if fault == "stuck":
            before_stuck = device.stuck
            device.stuck = bool(value)
            return before_stuck
        if fault == "slow_ms":
            before_slow = device.slow_ms
            device.slow_ms = float(value)
            return before_slow
        if fault == "reset":
            device.reset()
            return None
        if fault == "unplug":
            device.link.unplug()
            return "plug"
        if fault == "plug":
            device.link.plug()
            return None
        if fault == "baud":
            before_baud = device.link.baud
            device.link.set_baud(int(value) if value else None)
            return before_baud
        if fault == "power":
            before_power = device.powered
            self._set_power(device, bool(value))
            return before_power
        if fault == "cooling":
            model: Any = device.model
            if not hasattr(model, "cooling_factor"):
                raise BenchError(f"{device.name} has no thermal model to fault")
            before_cooling = model.cooling_factor
            model.advance()
            model.cooling_factor = float(value)
            return before_cooling
        raise BenchError(
            f"unknown fault {fault!r}; line faults: {', '.join(LINE_FAULTS)}; "
            f"device faults: {', '.join(DEVICE_FAULTS)}"
        )

    def _set_power(self, device: SimDevice | GearDevice | DmxFixture, on: bool) -> None:
        for spec in self.spec.devices:
            if spec.name == device.name and spec.pdu_channel is not None and self.pdu:
                self.pdu.model.set_channel(spec.pdu_channel, on)
                return
        device.set_powered(on)

    async def _undo_later(self, name: str, fault: str, undo: Any, duration: float) -> None:
        await asyncio.sleep(duration)
        if fault == "unplug":
            self.apply_fault(name, "plug")
        else:
            self.apply_fault(name, fault, undo)

    async def _run_schedule(self) -> None:
        for item in sorted(self.spec.faults, key=lambda f: f.at):
            delay = self._started_at + item.at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                self.apply_fault(item.device, item.fault, item.value, item.duration)
            except BenchError:
                log.exception("scheduled fault failed")

    def _record(self, device: str, fault: str, value: Any) -> FaultRecord:
        record = FaultRecord(time.time(), time.monotonic(), device, fault, value)
        self.fault_log.append(record)
        log.info("fault %s %s=%r", device, fault, value)
        if self.on_fault is not None:
            self.on_fault(record)
        return record
