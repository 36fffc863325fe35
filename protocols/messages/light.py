"""LED light bodies: status, intensity and colour temperature with fades, power."""

from __future__ import annotations

import enum
from typing import Annotated

from protocols.records import I16, U8, U16, U32, Wire, record

INTENSITY_FULL = 1000  # permille
CCT_MIN_K = 2700
CCT_MAX_K = 6500
MAX_FADE_MS = 600_000


class LightFault(enum.IntFlag):
    THERMAL_FOLDBACK = 0x01  # output limited to cool down
    OVER_TEMPERATURE = 0x02  # output shut off
    LED_FAULT = 0x04
    FAN_FAULT = 0x08


@record
class LightStatus:
    on: Annotated[bool, Wire(U8)]
    intensity_permille: Annotated[
        int, Wire(U16, 0, INTENSITY_FULL, doc="output now, after fade and thermal limit")
    ]
    cct_k: Annotated[int, Wire(U16, CCT_MIN_K, CCT_MAX_K)]
    target_intensity_permille: Annotated[int, Wire(U16, 0, INTENSITY_FULL)]
    target_cct_k: Annotated[int, Wire(U16, CCT_MIN_K, CCT_MAX_K)]
    fade_remaining_ms: Annotated[int, Wire(U32, 0, MAX_FADE_MS)]
    output_limit_permille: Annotated[
        int, Wire(U16, 0, INTENSITY_FULL, doc="thermal fold-back ceiling")
    ]
    draw_mw: Annotated[int, Wire(U32, 0, 1_000_000)]
    temperature_cdeg: Annotated[int, Wire(I16, -4000, 15000)]
    faults: Annotated[LightFault, Wire(U16)]


@record
class LightSet:
    intensity_permille: Annotated[int, Wire(U16, 0, INTENSITY_FULL)]
    cct_k: Annotated[int, Wire(U16, CCT_MIN_K, CCT_MAX_K)]
    fade_ms: Annotated[int, Wire(U32, 0, MAX_FADE_MS)]


@record
class LightFailsafe:
    """The level a light fades to (over 2 s) when its host falls silent."""

    intensity_permille: Annotated[int, Wire(U16, 0, INTENSITY_FULL)]


@record
class PowerSwitch:
    on: Annotated[bool, Wire(U8)]
