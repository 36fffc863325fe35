"""Camera driver: every camera command as a typed coroutine."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from firmware_host.link.session import RequestSession, Stamped
from protocols.catalogue import (
    CAMERA_POWER,
    CAMERA_SETTINGS_GET,
    CAMERA_SETTINGS_SET,
    CAMERA_STATUS,
    CLEAR_ERROR,
    CLIP_DELETE,
    CLIP_INFO,
    CLIP_LIST,
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
    MAX_CLIPS_PER_PAGE,
    CameraPower,
    CameraSettings,
    CameraStatus,
    ClipDelete,
    ClipInfo,
    ClipInfoRequest,
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
from protocols.messages.common import EMPTY
from protocols.timecode import START_NOW, FrameRate


class CameraDriver:
    kind = "camera"

    def __init__(self, session: RequestSession) -> None:
        self.session = session

    def poll(self) -> Coroutine[Any, Any, CameraStatus]:
        """The session's coroutine itself, not one awaiting it: every poll's reply resumes
        the agent through each coroutine between them (see `RequestSession.call`)."""
        return self.session.call(CAMERA_STATUS, EMPTY)

    async def settings(self) -> CameraSettings:
        return await self.session.call(CAMERA_SETTINGS_GET, EMPTY)

    async def apply_settings(self, settings: CameraSettings) -> CameraSettings:
        return await self.session.call(CAMERA_SETTINGS_SET, settings)

    async def record_start(
        self, scene: str, take: int, roll: str, start_timecode: int = START_NOW
    ) -> RecordStarted:
        body = RecordStart(scene=scene, take=take, roll=roll, start_timecode=start_timecode)
        return await self.session.call(RECORD_START, body)

    async def record_stop(self) -> RecordStopped:
        return await self.session.call(RECORD_STOP, EMPTY)

    async def timecode(self) -> Stamped[TimecodeReading]:
        """The camera's clock, with the instants bounding when it was read."""
        return await self.session.call_stamped(TIMECODE_GET, lambda _: EMPTY)

    async def jam(
        self, reference_at: Callable[[float], tuple[int, int]], rate: FrameRate
    ) -> Stamped[TimecodeReading]:
        """Set the camera's clock to `reference_at(t)`, (frames, subframe_us), where t is the
        wall instant the request's bytes are written: the value is fixed as late as can be."""

        def body(sent_at: float) -> TimecodeJam:
            frames, subframe_us = reference_at(sent_at)
            return TimecodeJam(frames=frames, subframe_us=subframe_us, rate=rate)

        return await self.session.call_stamped(TIMECODE_JAM, body)

    async def preset(self, frames: int, rate: FrameRate) -> TimecodeReading:
        return await self.session.call(TIMECODE_SET, TimecodeSet(frames=frames, rate=rate))

    async def clip_ids(self) -> list[int]:
        ids: list[int] = []
        while True:
            page = await self.session.call(
                CLIP_LIST, ClipListRequest(first=len(ids), max_count=MAX_CLIPS_PER_PAGE)
            )
            ids.extend(ref.clip_id for ref in page.clips)
            if not page.clips or len(ids) >= page.total:
                return ids

    async def clip_info(self, clip_id: int) -> ClipInfo:
        return await self.session.call(CLIP_INFO, ClipInfoRequest(clip_id=clip_id))

    async def format_media(self) -> None:
        await self.session.call(FORMAT_MEDIA, FormatMedia(confirm=FORMAT_CONFIRM))

    async def delete_clip(self, clip_id: int) -> None:
        await self.session.call(CLIP_DELETE, ClipDelete(clip_id=clip_id, confirm=DELETE_CONFIRM))

    async def set_awake(self, awake: bool) -> CameraStatus:
        return await self.session.call(CAMERA_POWER, CameraPower(on=awake))

    async def clear_error(self) -> CameraStatus:
        return await self.session.call(CLEAR_ERROR, EMPTY)

    async def error_report(self) -> ErrorReport:
        return await self.session.call(ERROR_REPORT_GET, EMPTY)
