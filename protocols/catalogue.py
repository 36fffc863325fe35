"""The message catalogue: every type code, who sends it, and its request/reply/event bodies.

This table is the protocol. SPEC.md's catalogue section is generated from it
(`python -m protocols.spec_tables`) and a test keeps the two identical.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from protocols.errors import MessageError, UnknownMessageType
from protocols.framing import Frame, Kind, encode_frame
from protocols.messages.camera import (
    CameraPower,
    CameraSettings,
    CameraStatus,
    ClipDelete,
    ClipInfo,
    ClipInfoRequest,
    ClipList,
    ClipListRequest,
    ErrorReport,
    FormatMedia,
    RecordStart,
    RecordStarted,
    RecordStopped,
    TimecodeJam,
    TimecodeReading,
    TimecodeSet,
)
from protocols.messages.common import (
    DeviceClass,
    DeviceEvent,
    Empty,
    Heartbeat,
    Hello,
    HelloRequest,
    Nack,
    NackCode,
    Ping,
)
from protocols.messages.light import LightFailsafe, LightSet, LightStatus, PowerSwitch
from protocols.messages.pdu import ChannelSwitch, PduChannel, PduStatus
from protocols.records import codec_of, encode_body

Req = TypeVar("Req")
Rep = TypeVar("Rep")
Body = TypeVar("Body")

_ALL = frozenset(DeviceClass)
_CAMERA = frozenset({DeviceClass.CAMERA})
_LIGHT = frozenset({DeviceClass.LIGHT})
_PDU = frozenset({DeviceClass.PDU})


class MsgType(enum.IntEnum):
    HELLO = 0x01
    NACK = 0x02
    PING = 0x03
    HEARTBEAT = 0x04
    EVENT = 0x05
    CAMERA_STATUS = 0x20
    CAMERA_SETTINGS_GET = 0x21
    CAMERA_SETTINGS_SET = 0x22
    RECORD_START = 0x23
    RECORD_STOP = 0x24
    TIMECODE_GET = 0x25
    TIMECODE_SET = 0x26
    TIMECODE_JAM = 0x27
    CLIP_LIST = 0x28
    CLIP_INFO = 0x29
    FORMAT_MEDIA = 0x2A
    CAMERA_POWER = 0x2B
    CLEAR_ERROR = 0x2C
    ERROR_REPORT = 0x2D
    CLIP_DELETE = 0x2E
    LIGHT_STATUS = 0x40
    LIGHT_SET = 0x41
    LIGHT_POWER = 0x42
    LIGHT_FAILSAFE = 0x43
    PDU_STATUS = 0x60
    PDU_CHANNEL_SET = 0x61


@dataclass(frozen=True)
class Command(Generic[Req, Rep]):
    """A request the host sends and the reply body a device answers it with."""

    code: MsgType
    request: type[Req]
    reply: type[Rep]
    classes: frozenset[DeviceClass]
    doc: str
    hazardous: bool = False  # guarded by a confirmation code in the request
    changes_state: bool = True  # a retransmission must not act twice (reply cache)


@dataclass(frozen=True)
class EventSpec(Generic[Body]):
    """An unsolicited frame a device sends."""

    code: MsgType
    body: type[Body]
    classes: frozenset[DeviceClass]
    doc: str


# fmt: off
HELLO = Command(MsgType.HELLO, HelloRequest, Hello, _ALL,
                "Open a session, negotiate the version, identify the device.")
PING = Command(MsgType.PING, Ping, Ping, _ALL,
               "Echo a token; works without a session.", changes_state=False)
CAMERA_STATUS = Command(MsgType.CAMERA_STATUS, Empty, CameraStatus, _CAMERA,
                        "State, timecode, media, temperature, draw.", changes_state=False)
CAMERA_SETTINGS_GET = Command(MsgType.CAMERA_SETTINGS_GET, Empty, CameraSettings, _CAMERA,
                              "Current recording settings.", changes_state=False)
CAMERA_SETTINGS_SET = Command(MsgType.CAMERA_SETTINGS_SET, CameraSettings, CameraSettings, _CAMERA,
                              "Apply settings (not while recording); replies with what applies.")
RECORD_START = Command(MsgType.RECORD_START, RecordStart, RecordStarted, _CAMERA,
                       "Arm a take with its slate; starts now or on the given timecode frame.")
RECORD_STOP = Command(MsgType.RECORD_STOP, Empty, RecordStopped, _CAMERA,
                      "Stop recording (or disarm) and close the clip.")
TIMECODE_GET = Command(MsgType.TIMECODE_GET, Empty, TimecodeReading, _CAMERA,
                       "Read the timecode clock with sub-frame precision.", changes_state=False)
TIMECODE_SET = Command(MsgType.TIMECODE_SET, TimecodeSet, TimecodeReading, _CAMERA,
                       "Preset the free-running clock to a frame count and rate.")
TIMECODE_JAM = Command(MsgType.TIMECODE_JAM, TimecodeJam, TimecodeReading, _CAMERA,
                       "Align the clock to the host reference and mark it jammed.")
CLIP_LIST = Command(MsgType.CLIP_LIST, ClipListRequest, ClipList, _CAMERA,
                    "One page of clip ids, oldest first.", changes_state=False)
CLIP_INFO = Command(MsgType.CLIP_INFO, ClipInfoRequest, ClipInfo, _CAMERA,
                    "Slate, timecode and size of one clip.", changes_state=False)
FORMAT_MEDIA = Command(MsgType.FORMAT_MEDIA, FormatMedia, Empty, _CAMERA,
                       "Erase all clips; needs the FORMAT_CONFIRM code.", hazardous=True)
CLIP_DELETE = Command(MsgType.CLIP_DELETE, ClipDelete, Empty, _CAMERA,
                      "Delete one closed clip; needs the DELETE_CONFIRM code.", hazardous=True)
CAMERA_POWER = Command(MsgType.CAMERA_POWER, CameraPower, CameraStatus, _CAMERA,
                       "Sleep (OFF) or wake (STANDBY).")
CLEAR_ERROR = Command(MsgType.CLEAR_ERROR, Empty, CameraStatus, _CAMERA,
                      "Acknowledge an error; returns to STANDBY once its cause is gone.")
ERROR_REPORT_GET = Command(MsgType.ERROR_REPORT, Empty, ErrorReport, _CAMERA,
                           "The last error report.", changes_state=False)
LIGHT_STATUS = Command(MsgType.LIGHT_STATUS, Empty, LightStatus, _LIGHT,
                       "Output, targets, fade, draw, temperature, faults.", changes_state=False)
LIGHT_SET = Command(MsgType.LIGHT_SET, LightSet, LightStatus, _LIGHT,
                    "Fade to an intensity and colour temperature.")
LIGHT_POWER = Command(MsgType.LIGHT_POWER, PowerSwitch, LightStatus, _LIGHT,
                      "Switch the LED driver on or off.")
LIGHT_FAILSAFE = Command(MsgType.LIGHT_FAILSAFE, LightFailsafe, LightStatus, _LIGHT,
                         "Set the level to fade to if the host falls silent.")
PDU_STATUS = Command(MsgType.PDU_STATUS, Empty, PduStatus, _PDU,
                     "Measured voltage, current and power of every channel.", changes_state=False)
PDU_CHANNEL_SET = Command(MsgType.PDU_CHANNEL_SET, ChannelSwitch, PduChannel, _PDU,
                          "Switch one channel; switching on clears a trip.")

HEARTBEAT = EventSpec(MsgType.HEARTBEAT, Heartbeat, _ALL,
                      "Sent every heartbeat_ms while a session is open.")
EVENT = EventSpec(MsgType.EVENT, DeviceEvent, _ALL,
                  "Something changed; the same fact is also in polled status.")
ERROR_REPORT = EventSpec(MsgType.ERROR_REPORT, ErrorReport, _CAMERA,
                         "The camera entered ERROR.")
# fmt: on

COMMANDS: dict[int, Command[Any, Any]] = {
    c.code: c
    for c in (
        HELLO, PING, CAMERA_STATUS, CAMERA_SETTINGS_GET, CAMERA_SETTINGS_SET, RECORD_START,
        RECORD_STOP, TIMECODE_GET, TIMECODE_SET, TIMECODE_JAM, CLIP_LIST, CLIP_INFO,
        FORMAT_MEDIA, CLIP_DELETE, CAMERA_POWER, CLEAR_ERROR, ERROR_REPORT_GET, LIGHT_STATUS,
        LIGHT_SET, LIGHT_POWER, LIGHT_FAILSAFE, PDU_STATUS, PDU_CHANNEL_SET,
    )
}  # fmt: skip
EVENTS: dict[int, EventSpec[Any]] = {e.code: e for e in (HEARTBEAT, EVENT, ERROR_REPORT)}


class NackReceived(MessageError):
    """The device refused a request; `code` says why."""

    def __init__(self, nack: Nack) -> None:
        try:
            name = MsgType(nack.request_type).name
        except ValueError:
            name = f"0x{nack.request_type:02X}"
        super().__init__(f"{name} refused: {nack.code.name} {nack.detail}".rstrip())
        self.nack = nack
        self.code: NackCode = nack.code


def encode_request(
    command: Command[Req, Any], body: Req, seq: int, *, retry: bool = False
) -> bytes:
    return encode_frame(Kind.REQUEST, command.code, seq, encode_body(body), retry=retry)


def encode_reply(command: Command[Any, Rep], body: Rep, seq: int) -> bytes:
    return encode_frame(Kind.REPLY, command.code, seq, encode_body(body))


def encode_nack(request_type: int, seq: int, code: NackCode, detail: str = "") -> bytes:
    detail = detail.encode("utf-8")[:64].decode("utf-8", "ignore")
    nack = Nack(request_type=request_type & 0xFF, code=code, detail=detail)
    return encode_frame(Kind.REPLY, MsgType.NACK, seq, encode_body(nack))


def encode_event(spec: EventSpec[Body], body: Body, seq: int) -> bytes:
    return encode_frame(Kind.EVENT, spec.code, seq, encode_body(body))


def command_for(code: int) -> Command[Any, Any]:
    try:
        return COMMANDS[code]
    except KeyError:
        raise UnknownMessageType(code, "request") from None


def decode_request(frame: Frame) -> tuple[Command[Any, Any], Any]:
    command = command_for(frame.msg_type)
    return command, codec_of(command.request).parse(frame.payload)


def decode_reply(frame: Frame, command: Command[Any, Rep]) -> Rep:
    """The reply body, or NackReceived when the device refused."""
    if frame.msg_type == MsgType.NACK:
        raise NackReceived(codec_of(Nack).parse(frame.payload))
    if frame.msg_type != command.code:
        raise MessageError(
            f"reply of type 0x{frame.msg_type:02X} does not answer {command.code.name}"
        )
    result: Rep = codec_of(command.reply).parse(frame.payload)
    return result


def decode_event(frame: Frame) -> tuple[EventSpec[Any], Any]:
    try:
        spec = EVENTS[frame.msg_type]
    except KeyError:
        raise UnknownMessageType(frame.msg_type, "event") from None
    return spec, codec_of(spec.body).parse(frame.payload)


def decode_any(frame: Frame) -> tuple[str, Any]:
    """(type name, body) of any frame, for tools that watch both directions."""
    if frame.kind is Kind.REQUEST:
        command, body = decode_request(frame)
        return command.code.name, body
    if frame.kind is Kind.EVENT:
        spec, body = decode_event(frame)
        return spec.code.name, body
    if frame.msg_type == MsgType.NACK:
        return "NACK", codec_of(Nack).parse(frame.payload)
    command = command_for(frame.msg_type)
    return command.code.name, codec_of(command.reply).parse(frame.payload)
