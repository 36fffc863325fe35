"""Camera bodies: status, settings, slate-carrying record start/stop, timecode, clips."""

from __future__ import annotations

import enum
from typing import Annotated

from protocols.records import I16, U8, U16, U32, U64, ArrayOf, DocIntEnum, Text, Wire, record
from protocols.timecode import FrameRate

FORMAT_CONFIRM = 0x21544D46  # b"FMT!" little-endian: FORMAT_MEDIA's confirmation code
DELETE_CONFIRM = 0x214C4544  # b"DEL!" little-endian: CLIP_DELETE's confirmation code
MAX_CLIPS_PER_PAGE = 40


class CameraState(DocIntEnum):
    OFF = 0, "asleep: answers the link, draws sleep power, will not record"
    STANDBY = 1, "ready to record"
    ARMED = 2, "record accepted, waiting for its start timecode"
    RECORDING = 3, "rolling"
    ERROR = 4, "see `error`; CLEAR_ERROR returns to STANDBY once the cause is gone"


class Codec(enum.IntEnum):
    PRORES_422_HQ = 1
    PRORES_422 = 2
    PRORES_422_LT = 3
    H265 = 4
    RAW = 5


class CameraError(DocIntEnum):
    NONE = 0, "no error"
    OVER_TEMPERATURE = 1, "recording stopped to protect the sensor"
    MEDIA_FULL = 2, "recording stopped or refused: no space"
    MEDIA_FAULT = 3, "the card cannot be written"
    SENSOR_FAULT = 4, "the sensor does not deliver images"


@record
class CameraStatus:
    state: Annotated[CameraState, Wire(U8)]
    timecode: Annotated[int, Wire(U32, doc="frames since 00:00:00:00 at `rate`")]
    rate: Annotated[FrameRate, Wire(U8)]
    jammed: Annotated[bool, Wire(U8, doc="1 once TIMECODE_JAM aligned the clock")]
    media_used_bytes: Annotated[int, Wire(U64)]
    media_free_bytes: Annotated[int, Wire(U64)]
    temperature_cdeg: Annotated[int, Wire(I16, -4000, 12500)]
    draw_mw: Annotated[int, Wire(U32, 0, 500_000)]
    clip_id: Annotated[int, Wire(U32, doc="clip being recorded, else the last one, 0 if none")]
    error: Annotated[CameraError, Wire(U16)]


@record
class CameraSettings:
    width: Annotated[int, Wire(U16, 640, 8192)]
    height: Annotated[int, Wire(U16, 480, 4320)]
    rate: Annotated[FrameRate, Wire(U8)]
    codec: Annotated[Codec, Wire(U8)]
    bitrate_kbps: Annotated[int, Wire(U32, 1_000, 3_000_000)]
    shutter_decideg: Annotated[int, Wire(U16, 10, 3600, doc="shutter angle")]
    iso: Annotated[int, Wire(U16, 50, 25600)]
    white_balance_k: Annotated[int, Wire(U16, 2000, 10000)]


@record
class RecordStart:
    scene: Annotated[str, Text(12)]
    take: Annotated[int, Wire(U16, 1, 999)]
    roll: Annotated[str, Text(8)]
    start_timecode: Annotated[
        int, Wire(U32, doc="frame to start on; 0xFFFFFFFF (START_NOW): the next frame")
    ]


@record
class RecordStarted:
    clip_id: Annotated[int, Wire(U32, 1, None)]
    timecode_in: Annotated[int, Wire(U32)]


@record
class RecordStopped:
    clip_id: Annotated[int, Wire(U32, 1, None)]
    timecode_out: Annotated[int, Wire(U32, doc="first frame not recorded")]
    frames: Annotated[int, Wire(U32)]
    bytes: Annotated[int, Wire(U64)]


@record
class TimecodeReading:
    frames: Annotated[int, Wire(U32)]
    subframe_us: Annotated[int, Wire(U32, 0, 999_999, doc="time into the current frame")]
    rate: Annotated[FrameRate, Wire(U8)]
    jammed: Annotated[bool, Wire(U8)]


@record
class TimecodeSet:
    frames: Annotated[int, Wire(U32)]
    rate: Annotated[FrameRate, Wire(U8)]


@record
class TimecodeJam:
    """The reference time at the instant the frame's last byte arrives."""

    frames: Annotated[int, Wire(U32, doc="reference frame when the last byte arrives")]
    subframe_us: Annotated[int, Wire(U32, 0, 999_999, doc="time into that frame")]
    rate: Annotated[FrameRate, Wire(U8)]


@record
class ClipListRequest:
    first: Annotated[int, Wire(U16)]
    max_count: Annotated[int, Wire(U8, 1, MAX_CLIPS_PER_PAGE)]


@record
class ClipRef:
    clip_id: Annotated[int, Wire(U32, 1, None)]


@record
class ClipList:
    total: Annotated[int, Wire(U16)]
    first: Annotated[int, Wire(U16)]
    clips: Annotated[tuple[ClipRef, ...], ArrayOf(ClipRef, MAX_CLIPS_PER_PAGE)]


@record
class ClipInfoRequest:
    clip_id: Annotated[int, Wire(U32, 1, None)]


@record
class ClipInfo:
    clip_id: Annotated[int, Wire(U32, 1, None)]
    scene: Annotated[str, Text(12)]
    take: Annotated[int, Wire(U16, 1, 999)]
    roll: Annotated[str, Text(8)]
    timecode_in: Annotated[int, Wire(U32)]
    timecode_out: Annotated[int, Wire(U32, doc="timecode_in + frames")]
    rate: Annotated[FrameRate, Wire(U8)]
    frames: Annotated[int, Wire(U32)]
    bytes: Annotated[int, Wire(U64)]
    codec: Annotated[Codec, Wire(U8)]
    bitrate_kbps: Annotated[int, Wire(U32)]
    closed: Annotated[bool, Wire(U8, doc="0 while still recording")]


@record
class FormatMedia:
    confirm: Annotated[int, Wire(U32, doc="must be 0x21544D46 (ASCII 'FMT!')")]


@record
class ClipDelete:
    clip_id: Annotated[int, Wire(U32, 1, None)]
    confirm: Annotated[int, Wire(U32, doc="must be 0x214C4544 (ASCII 'DEL!')")]


@record
class CameraPower:
    on: Annotated[bool, Wire(U8, doc="0 sleep (OFF), 1 wake (STANDBY)")]


@record
class ErrorReport:
    error: Annotated[CameraError, Wire(U16)]
    timecode: Annotated[int, Wire(U32)]
    clip_id: Annotated[int, Wire(U32)]
    temperature_cdeg: Annotated[int, Wire(I16, -4000, 12500)]
    detail: Annotated[str, Text(48)]
