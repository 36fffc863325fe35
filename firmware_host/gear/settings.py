"""Per-protocol settings of a [[device]] (`protocol = ...` and its `[device.gear]` table)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal, Protocol

import msgspec

from protocols.dmx_personality import load_personality
from protocols.errors import ProtocolError


class GearConfig(msgspec.Struct, forbid_unknown_fields=True):
    # enttec-dmx: the fixture on the widget's line
    dmx_address: Annotated[int, msgspec.Meta(ge=1, le=512)] = 1
    personality: str = "led-panel-2ch"  # protocols/personalities/NAME.toml, or a path
    rdm_uid: str | None = None  # MMMM:DDDDDDDD; none: a DMX-only fixture that reports nothing
    # modbus-rtu: the meter and relay board on the bus
    register_map: Literal["eastron-sdm120"] = "eastron-sdm120"
    meter_unit: Annotated[int, msgspec.Meta(ge=1, le=247)] = 1
    relay_unit: Annotated[int, msgspec.Meta(ge=1, le=247)] = 2
    relay_channels: Annotated[int, msgspec.Meta(ge=1, le=16)] = 8
    # sony9pin: what the protocol cannot tell, for the data budget (estimated media)
    media_capacity_gb: Annotated[float, msgspec.Meta(gt=0)] = 2000.0
    bitrate_kbps: Annotated[int, msgspec.Meta(ge=1000, le=3_000_000)] = 700_000


KIND_OF = {"sony9pin": "camera", "enttec-dmx": "light", "modbus-rtu": "pdu"}


class DeviceLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def port(self) -> str: ...
    @property
    def protocol(self) -> str: ...
    @property
    def gear(self) -> GearConfig: ...


def gear_problems(devices: Sequence[DeviceLike], at: list[str]) -> list[str]:
    """Protocol fits kind; UIDs parse; personalities exist; fixtures on one widget fit the
    universe without overlapping. `at[i]` names devices[i] in messages."""
    problems = []
    slots: dict[str, list[tuple[int, int, str]]] = {}
    for where, device in zip(at, devices, strict=True):
        if device.protocol == "native":
            continue
        if KIND_OF[device.protocol] != device.kind:
            problems.append(
                f"{where}.protocol {device.protocol!r} is for a "
                f"{KIND_OF[device.protocol]}, not a {device.kind}"
            )
            continue
        gear = device.gear
        if device.protocol != "enttec-dmx":
            continue
        try:
            footprint = load_personality(gear.personality).footprint
        except ProtocolError as exc:
            problems.append(f"{where}.gear.personality: {exc}")
            continue
        if gear.rdm_uid is not None:
            from protocols import rdm  # noqa: PLC0415 - its tables cost a node without RDM 8 ms

            try:
                rdm.parse_uid(gear.rdm_uid)
            except ProtocolError as exc:
                problems.append(f"{where}.gear.rdm_uid: {exc}")
        last = gear.dmx_address + footprint - 1
        if last > 512:
            problems.append(
                f"{where}.gear.dmx_address {gear.dmx_address} + footprint "
                f"{footprint} runs past slot 512"
            )
        for first, end, other in slots.get(device.port, []):
            if first <= last and gear.dmx_address <= end:
                problems.append(
                    f"{where}: DMX slots {gear.dmx_address}-{last} overlap "
                    f"{other}'s {first}-{end} on {device.port}"
                )
        slots.setdefault(device.port, []).append((gear.dmx_address, last, device.name))
    return problems
