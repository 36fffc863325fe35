"""Power distribution unit bodies: per-channel measurements and switching."""

from __future__ import annotations

from typing import Annotated

from protocols.records import U8, U16, U32, ArrayOf, Wire, record

MAX_CHANNELS = 16


@record
class PduChannel:
    channel: Annotated[int, Wire(U8, 0, MAX_CHANNELS - 1)]
    on: Annotated[bool, Wire(U8)]
    tripped: Annotated[bool, Wire(U8, doc="over-current trip; switching on clears it")]
    voltage_mv: Annotated[int, Wire(U16)]
    current_ma: Annotated[int, Wire(U16)]
    power_mw: Annotated[int, Wire(U32)]


@record
class PduStatus:
    bus_voltage_mv: Annotated[int, Wire(U16)]
    total_power_mw: Annotated[int, Wire(U32)]
    channels: Annotated[tuple[PduChannel, ...], ArrayOf(PduChannel, MAX_CHANNELS)]


@record
class ChannelSwitch:
    channel: Annotated[int, Wire(U8, 0, MAX_CHANNELS - 1)]
    on: Annotated[bool, Wire(U8)]
