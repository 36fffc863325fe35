"""Bodies every device class speaks: session, liveness, events, refusals."""

from __future__ import annotations

import enum
from typing import Annotated

from protocols.records import I32, U8, U16, U32, DocIntEnum, Text, Wire, record

PROTOCOL_VERSION = 1  # catalogue version this implementation speaks (negotiated in HELLO)


class DeviceClass(enum.IntEnum):
    CAMERA = 1
    LIGHT = 2
    PDU = 3


class NackCode(DocIntEnum):
    """Why a device refused a request; the reply's `detail` says more for humans."""

    UNKNOWN_TYPE = 1, "this device does not implement the message type"
    MALFORMED = 2, "the body does not parse as the type's request"
    OUT_OF_RANGE = 3, "a field is outside its documented range"
    BAD_STATE = 4, "not allowed in the current state (e.g. RECORD_START while recording)"
    MEDIA_FULL = 5, "not enough free media to record"
    OVER_TEMPERATURE = 6, "refused until the device has cooled down"
    NO_SESSION = 7, "no session: send HELLO first (after power-up or reset)"
    VERSION_UNSUPPORTED = 8, "no protocol version in common"
    HAZARD_NOT_CONFIRMED = 9, "a hazardous command without its confirmation code"
    NOT_FOUND = 10, "no such clip or channel"
    BUSY = 11, "try again later"
    HARDWARE_FAULT = 12, "a fault prevents the device from acting"
    INTERNAL = 13, "the device failed; the detail text says how"


class Severity(enum.IntEnum):
    DIAGNOSTIC = 0
    INFO = 1
    WARNING = 2
    CRITICAL = 3


class EventCode(DocIntEnum):
    """Codes of unsolicited EVENT frames (also visible in polled status: events are hints)."""

    BOOTED = 0x01, "the device started; value 0"
    HOST_LOST = 0x03, "no frame from the host for host_timeout_ms: fail-safe applied; value 0"
    STATE_CHANGED = 0x02, "a state change not covered below; value: the new state"
    RECORD_STARTED = 0x10, "a camera started rolling; value: timecode_in"
    RECORD_STOPPED = 0x11, "a camera stopped; value: clip id"
    MEDIA_FULL = 0x12, "recording stopped, media full; value 0"
    OVER_TEMPERATURE = 0x13, "over-temperature protection acted; value: 0.01 degC"
    TIMECODE_JAMMED = 0x14, "timecode aligned to the host; value: offset in us"
    FADE_COMPLETE = 0x20, "a light reached its target; value: permille"
    THERMAL_FOLDBACK = 0x21, "a light limits its output to cool; value: 0.01 degC"
    FOLDBACK_CLEARED = 0x22, "a light's thermal limit is lifted; value: 0.01 degC"
    CHANNEL_TRIPPED = 0x30, "a PDU channel tripped on over-current; value: channel"
    CHANNEL_SWITCHED = 0x31, "a PDU channel switched; value: channel"


@record
class Empty:
    """A body with no fields."""


EMPTY = Empty()  # records are frozen: one body serves every request without fields


@record
class HelloRequest:
    """Opens a session and negotiates the catalogue version."""

    proto_min: Annotated[int, Wire(U8, 1, 255)]
    proto_max: Annotated[int, Wire(U8, 1, 255)]
    host_timeout_ms: Annotated[
        int, Wire(U16, 0, 60000, doc="apply the fail-safe after this much host silence; 0: never")
    ]


@record
class Hello:
    """Identity and the chosen version; a new boot_id means the device restarted."""

    proto: Annotated[int, Wire(U8, 1, 255)]
    device_class: Annotated[DeviceClass, Wire(U8)]
    model: Annotated[str, Text(24)]
    serial: Annotated[str, Text(24)]
    firmware: Annotated[str, Text(16)]
    boot_id: Annotated[int, Wire(U32, doc="random at power-up: a new value means a restart")]
    heartbeat_ms: Annotated[int, Wire(U16, 100, 60000, doc="period of HEARTBEAT events")]


@record
class Nack:
    request_type: Annotated[int, Wire(U8, doc="type code of the refused request")]
    code: Annotated[NackCode, Wire(U8)]
    detail: Annotated[str, Text(64)]


@record
class Ping:
    token: Annotated[int, Wire(U32)]


@record
class Heartbeat:
    boot_id: Annotated[int, Wire(U32, doc="as in HELLO")]
    uptime_ms: Annotated[int, Wire(U32, doc="since power-up, wraps after 49.7 days")]


@record
class DeviceEvent:
    code: Annotated[EventCode, Wire(U16)]
    severity: Annotated[Severity, Wire(U8)]
    value: Annotated[
        int, Wire(I32, doc="event-specific: a timecode, clip id, channel or temperature")
    ]
    detail: Annotated[str, Text(48)]
