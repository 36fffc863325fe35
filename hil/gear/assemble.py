"""Bench wiring for real gear: a [[device]] with `protocol` other than native becomes a deck,
a fixture behind a named Enttec widget, or a Modbus meter/relay PDU (hil/bench.py)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Literal

import msgspec

from hil.gear.deck import SonyDeck
from hil.gear.fixture import DmxFixture
from hil.gear.meter import ModbusMeterPdu
from hil.gear.widget import EnttecWidget
from hil.models.base import PhysicsClock
from hil.models.camera import CameraModel, CameraParams
from hil.models.light import LightModel, LightParams
from hil.models.pdu import PduModel, PduParams
from protocols import rdm
from protocols.dmx_personality import load_personality
from protocols.errors import ProtocolError

Protocol = Literal["native", "sony9pin", "enttec-dmx", "modbus-rtu"]
KIND_OF = {"sony9pin": "camera", "enttec-dmx": "light", "modbus-rtu": "pdu"}


class GearSpec(msgspec.Struct):
    """The per-protocol settings of a bench [[device]] (all optional, checked here)."""

    protocol: Protocol = "native"
    widget: str | None = None  # enttec-dmx: the widget's name (its port is run_dir/NAME)
    dmx_address: int = 1
    personality: str = "led-panel-2ch"
    rdm_uid: str | None = None  # None: a DMX-only fixture
    meter_unit: int = 1
    relay_unit: int = 2


class GearError(Exception):
    pass


LINE_BAUD = {"sony9pin": 38_400, "modbus-rtu": 9_600}


def daemon_options(protocol: str, gear: dict[str, object]) -> dict[str, object]:
    """What the daemon's [[device]] needs for a bench's real gear (tools/up.py): its protocol,
    the line's baud, and the settings both ends must agree on."""
    if protocol == "native":
        return {}
    spec = msgspec.convert({"protocol": protocol, **gear}, type=GearSpec)
    if protocol == "enttec-dmx":
        shared = {"dmx_address": spec.dmx_address, "personality": spec.personality}
        return {
            "protocol": protocol,
            "gear": shared | ({"rdm_uid": spec.rdm_uid} if spec.rdm_uid else {}),
        }
    options: dict[str, object] = {"protocol": protocol, "baud": LINE_BAUD[protocol]}
    if protocol == "modbus-rtu":
        options["gear"] = {"meter_unit": spec.meter_unit, "relay_unit": spec.relay_unit}
    return options


class GearAssembly:
    def __init__(self, run_dir: Path, clock: PhysicsClock) -> None:
        self.run_dir = run_dir
        self.clock = clock
        self.fixtures: dict[str, DmxFixture] = {}
        self.widget_of: dict[str, str] = {}  # fixture -> widget name
        self._lines: dict[str, list[DmxFixture]] = {}

    def build(
        self,
        name: str,
        kind: str,
        gear: GearSpec,
        *,
        params: CameraParams | LightParams | PduParams,
        baud: int | None,
        rng: random.Random,
    ) -> SonyDeck | ModbusMeterPdu | None:
        """A device with its own port, or None for a fixture (it lives behind its widget)."""
        if KIND_OF[gear.protocol] != kind:
            raise GearError(
                f"device {name!r}: protocol {gear.protocol} is for a "
                f"{KIND_OF[gear.protocol]}, not a {kind}"
            )
        path = self.run_dir / name
        if isinstance(params, CameraParams):
            return SonyDeck(
                name,
                CameraModel(params, self.clock),
                path,
                rng=rng,
                **({"baud": baud} if baud else {}),
            )
        if isinstance(params, PduParams):
            return ModbusMeterPdu(
                name,
                PduModel(params, self.clock, rng),
                path,
                meter_unit=gear.meter_unit,
                relay_unit=gear.relay_unit,
                rng=rng,
                **({"baud": baud} if baud else {}),
            )
        if gear.widget is None:
            raise GearError(f"device {name!r}: an enttec-dmx light needs `widget = NAME`")
        try:
            personality = load_personality(gear.personality)
            uid = rdm.parse_uid(gear.rdm_uid) if gear.rdm_uid else None
        except ProtocolError as exc:
            raise GearError(f"device {name!r}: {exc}") from exc
        fixture = DmxFixture(
            name, LightModel(params, self.clock), personality, gear.dmx_address, uid
        )
        self.fixtures[name] = fixture
        self.widget_of[name] = gear.widget
        self._lines.setdefault(gear.widget, []).append(fixture)
        return None

    def widgets(self, rng: random.Random) -> list[EnttecWidget]:
        return [
            EnttecWidget(
                widget, fixtures, self.run_dir / widget, rng=rng, serial=10_000_000 + index
            )
            for index, (widget, fixtures) in enumerate(self._lines.items())
        ]
