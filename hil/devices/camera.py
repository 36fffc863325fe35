"""The simulated camera's firmware: catalogue handlers over a CameraModel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hil.device import SimDevice, command_handlers
from hil.models.base import ModelEvent, Refusal
from hil.models.camera import CameraModel, Clip
from protocols.catalogue import (
    CAMERA_POWER,
    CAMERA_SETTINGS_GET,
    CAMERA_SETTINGS_SET,
    CAMERA_STATUS,
    CLEAR_ERROR,
    CLIP_DELETE,
    CLIP_INFO,
    CLIP_LIST,
    ERROR_REPORT,
    ERROR_REPORT_GET,
    FORMAT_MEDIA,
    RECORD_START,
    RECORD_STOP,
    TIMECODE_GET,
    TIMECODE_JAM,
    TIMECODE_SET,
)
from protocols.messages.camera import (
    DELETE_CONFIRM,
    FORMAT_CONFIRM,
    CameraPower,
    CameraSettings,
    CameraStatus,
    ClipDelete,
    ClipInfo,
    ClipInfoRequest,
    ClipList,
    ClipListRequest,
    ClipRef,
    ErrorReport,
    FormatMedia,
    RecordStart,
    RecordStarted,
    RecordStopped,
    TimecodeJam,
    TimecodeReading,
    TimecodeSet,
)
from protocols.messages.common import DeviceClass, Empty, EventCode, NackCode


class CameraDevice(SimDevice):
    device_class = DeviceClass.CAMERA
    model: CameraModel

    def __init__(self, name: str, model: CameraModel, path: Path, **kwargs: Any) -> None:
        super().__init__(
            name,
            model,
            path,
            model_name=model.params.model,
            firmware=model.params.firmware,
            heartbeat_ms=model.params.heartbeat_ms,
            **kwargs,
        )
        self.handlers.update(
            command_handlers(
                (CAMERA_STATUS, self._status),
                (CAMERA_SETTINGS_GET, lambda _: self.model.settings),
                (CAMERA_SETTINGS_SET, self._apply_settings),
                (RECORD_START, self._record_start),
                (RECORD_STOP, self._record_stop),
                (TIMECODE_GET, lambda _: self._timecode()),
                (TIMECODE_SET, self._timecode_set),
                (TIMECODE_JAM, self._timecode_jam),
                (CLIP_LIST, self._clip_list),
                (CLIP_INFO, self._clip_info),
                (FORMAT_MEDIA, self._format),
                (CLIP_DELETE, self._delete),
                (CAMERA_POWER, self._power),
                (CLEAR_ERROR, self._clear_error),
                (ERROR_REPORT_GET, lambda _: self._error_report()),
            )
        )

    def _status(self, _: Empty) -> CameraStatus:
        m = self.model
        frames, _sub = m.timecode()
        last_clip = m.current or (m.clips[-1] if m.clips else None)
        return CameraStatus(
            state=m.state,
            timecode=frames,
            rate=m.rate,
            jammed=m.jammed,
            media_used_bytes=int(m.media_used),
            media_free_bytes=int(m.media_free),
            temperature_cdeg=max(-4000, min(12500, round(m.temperature_c * 100))),
            draw_mw=round(m.draw_w() * 1000),
            clip_id=last_clip.clip_id if last_clip else 0,
            error=m.error,
        )

    def _apply_settings(self, settings: CameraSettings) -> CameraSettings:
        return self.model.apply_settings(settings)

    def _record_start(self, request: RecordStart) -> RecordStarted:
        clip = self.model.record_start(
            request.scene, request.take, request.roll, request.start_timecode
        )
        return RecordStarted(clip_id=clip.clip_id, timecode_in=clip.timecode_in)

    def _record_stop(self, _: Empty) -> RecordStopped:
        clip = self.model.record_stop()
        return RecordStopped(
            clip_id=clip.clip_id,
            timecode_out=clip.timecode_out,
            frames=clip.frames,
            bytes=int(clip.bytes),
        )

    def _timecode(self) -> TimecodeReading:
        frames, subframe_us = self.model.timecode()
        return TimecodeReading(
            frames=frames, subframe_us=subframe_us, rate=self.model.rate, jammed=self.model.jammed
        )

    def _timecode_set(self, request: TimecodeSet) -> TimecodeReading:
        self.model.preset_timecode(request.frames, request.rate)
        return self._timecode()

    def _timecode_jam(self, request: TimecodeJam) -> TimecodeReading:
        self.model.jam_timecode(request.frames, request.subframe_us, request.rate)
        return self._timecode()

    def _clip_list(self, request: ClipListRequest) -> ClipList:
        clips = self.model.clips
        page = clips[request.first : request.first + request.max_count]
        return ClipList(
            total=len(clips),
            first=request.first,
            clips=tuple(ClipRef(clip_id=c.clip_id) for c in page),
        )

    def _clip_info(self, request: ClipInfoRequest) -> ClipInfo:
        return self.clip_info(self.model.clip(request.clip_id))

    def clip_info(self, clip: Clip) -> ClipInfo:
        frames = self.model.frames_recorded(clip)
        return ClipInfo(
            clip_id=clip.clip_id,
            scene=clip.scene,
            take=clip.take,
            roll=clip.roll,
            timecode_in=clip.timecode_in,
            timecode_out=(clip.timecode_in + frames) % clip.rate.frames_per_day,
            rate=clip.rate,
            frames=frames,
            bytes=int(clip.bytes),
            codec=clip.codec,
            bitrate_kbps=clip.bitrate_kbps,
            closed=clip.closed,
        )

    def _format(self, request: FormatMedia) -> Empty:
        if request.confirm != FORMAT_CONFIRM:
            raise Refusal(
                NackCode.HAZARD_NOT_CONFIRMED,
                f"FORMAT_MEDIA needs confirm=0x{FORMAT_CONFIRM:08X}",
            )
        self.model.format_media()
        return Empty()

    def _delete(self, request: ClipDelete) -> Empty:
        if request.confirm != DELETE_CONFIRM:
            raise Refusal(
                NackCode.HAZARD_NOT_CONFIRMED,
                f"CLIP_DELETE needs confirm=0x{DELETE_CONFIRM:08X}",
            )
        self.model.delete_clip(request.clip_id)
        return Empty()

    def _power(self, request: CameraPower) -> CameraStatus:
        self.model.set_awake(request.on)
        return self._status(Empty())

    def _clear_error(self, _: Empty) -> CameraStatus:
        self.model.clear_error()
        return self._status(Empty())

    def _error_report(self) -> ErrorReport:
        m = self.model
        return ErrorReport(
            error=m.error,
            timecode=m.error_timecode,
            clip_id=m.error_clip,
            temperature_cdeg=max(-4000, min(12500, round(m.temperature_c * 100))),
            detail=m.error_detail[:48],
        )

    def on_model_event(self, event: ModelEvent) -> None:
        super().on_model_event(event)
        if event.code in (EventCode.OVER_TEMPERATURE, EventCode.MEDIA_FULL):
            self.send_event(ERROR_REPORT, self._error_report())
