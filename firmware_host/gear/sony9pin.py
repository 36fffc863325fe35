"""A Sony 9-pin recorder behind the camera driver's interface.

One block out, one block back (the controller must not send again before the answer); a
reply later than the timeout is retried, a NAK raises. What 9-pin cannot say is kept here:
the clips this daemon recorded (for the shot log), media used estimated from the configured
bitrate x recorded time (for the data budget), the settings the crew configured. Timing:
  * jam: TIME CODE PRESET carries whole frames and takes effect when its last byte lands,
    so it is written to land exactly on a reference frame boundary;
  * record: a deck records from the frame boundary after REC lands, so REC is written to
    land half a frame before the take's start frame (corrected by the deck's measured clock
    offset): the deck's first frame is the start frame, the same as the native cameras'.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import serial

from firmware_host.commands.dispatcher import CommandRejected
from firmware_host.drivers.camera import CameraDriver
from firmware_host.gear.line import BytePort
from firmware_host.gear.settings import GearConfig
from firmware_host.link.errors import LinkError, LinkTimeout
from firmware_host.link.session import Stamped
from firmware_host.link.stats import LinkStats
from firmware_host.link.transport import Tap
from firmware_host.workflow.timecode import ClockReading, ReferenceClock
from protocols import sony9pin as s9
from protocols.messages.camera import (
    CameraError,
    CameraSettings,
    CameraState,
    CameraStatus,
    ClipInfo,
    Codec,
    ErrorReport,
    RecordStarted,
    RecordStopped,
    TimecodeReading,
)
from protocols.timecode import START_NOW, FrameRate

ARM_MARGIN_S = 0.03  # the line is held this long before a timed write, so no poll is in flight


class NakReceived9Pin(LinkError):
    def __init__(self, device: str, request: str, errors: int) -> None:
        names = (
            ", ".join(str(e.name).lower() for e in s9.NakError if e & errors) or f"0x{errors:02x}"
        )
        super().__init__(f"{device}: {request} refused with NAK ({names})")
        self.errors = errors


ANSWERS = {  # what answers each request (besides a NAK)
    s9.Cmd.DEVICE_TYPE_REQUEST: frozenset({s9.Cmd.DEVICE_TYPE}),
    s9.Cmd.CURRENT_TIME_SENSE: frozenset(
        {s9.Cmd.LTC_TIME_DATA, s9.Cmd.VITC_TIME_DATA, s9.Cmd.TIMER1_DATA}
    ),
    s9.Cmd.STATUS_SENSE: frozenset({s9.Cmd.STATUS_DATA}),
}


def wire_s(n_bytes: int) -> float:
    return n_bytes * s9.BITS_PER_BYTE / s9.BAUD


class Sony9PinLink:
    """Request/answer on a 9-pin line, one at a time."""

    def __init__(
        self,
        name: str,
        stats: LinkStats,
        *,
        timeout_s: float,
        retries: int,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.stats = stats
        self.timeout_s = timeout_s
        self.retries = retries
        self.wall = wall
        self.port: BytePort | None = None
        self.deframer = s9.Deframer()
        self.lock = asyncio.Lock()
        self.last_rx = 0.0
        self._waiter: asyncio.Future[s9.Block] | None = None
        self._expected: frozenset[s9.Cmd] = frozenset()

    async def open(self, path: str, tap: Tap | None) -> None:
        self.port = await BytePort.open(
            path, s9.BAUD, self._on_data, parity=serial.PARITY_ODD, tap=tap
        )
        self.last_rx = asyncio.get_running_loop().time()

    def close(self) -> None:
        if self.port is not None:
            self.port.close()

    def _on_data(self, data: bytes) -> None:
        # No inter-byte gap rule here: the host reads the port when it is scheduled, not as
        # bytes arrive, so a gap it sees says nothing of the line. Each request starts afresh.
        loop = asyncio.get_running_loop()
        for item in self.deframer.feed(data):
            if isinstance(item, s9.Rejected):
                self.stats.frames.rejected += 1
                self.stats.frames.crc_errors += item.reason == "checksum"
                continue
            self.stats.frames.frames += 1
            self.last_rx = loop.time()
            waiter, expected = self._waiter, self._expected
            if (
                waiter is not None
                and not waiter.done()
                and (item.command is s9.Cmd.NAK or item.command in expected)
            ):
                waiter.set_result(item)
            else:
                self.stats.unmatched += 1  # late (an earlier request's), or not an answer

    async def call(self, request: bytes, *, at: float | None = None) -> Stamped[s9.Block]:
        """Send one block (at wall instant `at` if given) and return its answer."""
        async with self.lock:
            return await self.call_locked(request, at=at)

    async def call_locked(self, request: bytes, *, at: float | None = None) -> Stamped[s9.Block]:
        port = self.port
        assert port is not None
        loop = asyncio.get_running_loop()
        sent = s9.parse_block(request)
        name = sent.name()
        self._expected = (
            ANSWERS.get(sent.command, frozenset({s9.Cmd.ACK})) if sent.command else frozenset()
        )
        self.stats.requests += 1
        for attempt in range(self.retries + 1):
            if at is not None and attempt == 0:
                await asyncio.sleep(max(0.0, at - self.wall()))
            self.deframer.reset()  # the line is the controller's: nothing partial stays valid
            self._waiter = loop.create_future()
            sent_at = self.wall()
            port.write(request)
            try:
                block = await asyncio.wait_for(asyncio.shield(self._waiter), self.timeout_s)
            except TimeoutError:
                self.stats.timeouts += 1
                if attempt < self.retries:
                    self.stats.retries += 1
                continue
            received_at = self.wall()
            self.stats.replies += 1
            self.stats.record_rtt(received_at - sent_at)
            if block.command is s9.Cmd.NAK:
                self.stats.nacks += 1
                raise NakReceived9Pin(self.name, name, block.data[0] if block.data else 0)
            return Stamped(block, sent_at, received_at)
        self.stats.failures += 1
        raise LinkTimeout(self.name, name, self.retries + 1, self.timeout_s)


def frame_bounded_offset(
    reference: ReferenceClock, readings: list[tuple[int, float, float]]
) -> ClockReading | None:
    """A deck's clock offset from whole-frame readings (frame, earliest, latest instant it
    can have been read): each says the deck was somewhere inside frame `frame` then, so the
    offset lies in [frame - ref(latest), frame + 1 - ref(earliest)]; readings spread over a
    frame straddle a boundary and their intersection is far narrower than one frame. None if
    the bounds disagree (a reading delayed past its stamps)."""
    fps = reference.rate.fps
    low, high = -float("inf"), float("inf")
    for frames, earliest, latest in readings:
        low = max(low, reference.offset_s(frames, 0, latest))
        high = min(high, reference.offset_s(frames, 0, earliest) + 1.0 / fps)
    if not readings or low > high:
        return None
    at = sum(e + lt for _, e, lt in readings) / (2 * len(readings))
    spans = [lt - e for _, e, lt in readings]
    return ClockReading((low + high) / 2, (high - low) / 2, at, min(spans))


@dataclass
class Clip:
    clip_id: int
    timecode_in: int
    scene: str
    take: int
    roll: str
    timecode_out: int | None = None
    frames: int = 0
    bytes: int = 0


@dataclass
class DeckMemory:
    """What a deck cannot be asked and the daemon must remember across reconnects."""

    clips: list[Clip] = field(default_factory=list)
    current: Clip | None = None
    media_used: float = 0.0  # estimated: bitrate x recorded time
    jammed: bool = False


class Sony9PinCamera(CameraDriver):
    """CameraDriver over 9-pin: the same calls, answered as far as the protocol allows."""

    def __init__(
        self,
        name: str,
        link: Sony9PinLink,
        reference: ReferenceClock,
        gear: GearConfig,
        *,
        clock: Callable[[], ClockReading | None],
        memory: DeckMemory,
    ) -> None:
        # No native session: every call below is answered over 9-pin instead.
        self.name = name
        self.link = link
        self.reference = reference
        self.gear = gear
        self.measured_clock = clock
        self.memory = memory
        self.device_type = b""

    @property
    def rate(self) -> FrameRate:
        return self.reference.rate

    def settings_now(self) -> CameraSettings:
        """What the crew configured: a 9-pin deck cannot be asked."""
        return CameraSettings(
            width=3840,
            height=2160,
            rate=self.rate,
            codec=Codec.PRORES_422_HQ,
            bitrate_kbps=self.gear.bitrate_kbps,
            shutter_decideg=1800,
            iso=800,
            white_balance_k=5600,
        )

    async def identify(self) -> bytes:
        reply = await self.link.call(s9.command(s9.Cmd.DEVICE_TYPE_REQUEST))
        if reply.reply.command is not s9.Cmd.DEVICE_TYPE:
            raise LinkError(f"{self.name}: answered {reply.reply.name()} to DEVICE TYPE REQUEST")
        self.device_type = reply.reply.data
        return self.device_type

    async def status_bits(self) -> s9.Status:
        reply = await self.link.call(s9.status_sense(0, s9.STATUS_BYTES))
        if reply.reply.command is not s9.Cmd.STATUS_DATA:
            raise LinkError(f"{self.name}: answered {reply.reply.name()} to STATUS SENSE")
        return s9.decode_status(reply.reply.data)

    # -- CameraDriver ---------------------------------------------------------------------

    async def poll(self) -> CameraStatus:
        bits = await self.status_bits()
        stamped = await self.timecode()
        if bits.hard_error:
            state = CameraState.ERROR
        elif bits.record:
            state = CameraState.RECORDING
        elif not bits.standby:
            state = CameraState.OFF
        else:
            state = CameraState.STANDBY
        if self.memory.current is not None and state is CameraState.RECORDING:
            self._account(stamped.reply.frames)
        capacity = self.gear.media_capacity_gb * 1e9
        used = min(self.memory.media_used, capacity)
        error = CameraError.MEDIA_FULL if bits.eot else CameraError.NONE
        return CameraStatus(
            state=state,
            timecode=stamped.reply.frames,
            rate=self.rate,
            jammed=self.memory.jammed,
            media_used_bytes=round(used),
            media_free_bytes=round(capacity - used),
            temperature_cdeg=0,  # not reported over 9-pin
            draw_mw=0,  # not reported over 9-pin
            clip_id=self.memory.current.clip_id
            if self.memory.current
            else (self.memory.clips[-1].clip_id if self.memory.clips else 0),
            error=error,
        )

    async def settings(self) -> CameraSettings:
        return self.settings_now()

    async def apply_settings(self, settings: CameraSettings) -> CameraSettings:
        raise CommandRejected(f"{self.name} is a 9-pin recorder: its settings are set on the deck")

    async def record_start(
        self, scene: str, take: int, roll: str, start_timecode: int = START_NOW
    ) -> RecordStarted:
        if start_timecode == START_NOW:
            await self._transport(s9.Cmd.RECORD)
            frames, _ = self.reference.now()
            start = frames + 1
        else:
            start = start_timecode
            await self._timed(
                s9.command(s9.Cmd.RECORD), self._frame_wall(start - 1) + 0.5 / self.rate.fps
            )
        clip = Clip(len(self.memory.clips) + 1, start, scene, take, roll)
        self.memory.clips.append(clip)
        self.memory.current = clip
        return RecordStarted(clip_id=clip.clip_id, timecode_in=start)

    async def record_stop(self) -> RecordStopped:
        await self._transport(s9.Cmd.STOP)
        stamped = await self.timecode()
        clip = self.memory.current
        if clip is None:
            raise CommandRejected(f"{self.name}: no take of this daemon is recording on it")
        self._account(stamped.reply.frames)
        clip.timecode_out = max(clip.timecode_in, stamped.reply.frames)
        self.memory.current = None
        return RecordStopped(
            clip_id=clip.clip_id,
            timecode_out=clip.timecode_out,
            frames=clip.frames,
            bytes=clip.bytes,
        )

    async def timecode(self) -> Stamped[TimecodeReading]:
        stamped = await self.link.call(
            s9.command(s9.Cmd.CURRENT_TIME_SENSE, bytes([s9.TimeSense.LTC]))
        )
        block = stamped.reply
        if block.command not in (s9.Cmd.LTC_TIME_DATA, s9.Cmd.VITC_TIME_DATA):
            raise LinkError(f"{self.name}: answered {block.name()} to CURRENT TIME SENSE")
        time_data = s9.decode_time(block.data)
        frames = time_data.to_frames(self.rate.timebase)
        # Whole frames only: the reading stands for the middle of its frame.
        half = round(0.5e6 / self.rate.fps)
        reading = TimecodeReading(
            frames=frames, subframe_us=half, rate=self.rate, jammed=self.memory.jammed
        )
        return Stamped(reading, stamped.sent_at, stamped.received_at)

    async def jam(
        self, reference_at: Callable[[float], tuple[int, int]], rate: FrameRate
    ) -> Stamped[TimecodeReading]:
        """TIME CODE PRESET landing on a frame boundary (reference_at is the native jam's)."""
        frames, _ = self.reference.at(self.link.wall() + 2 * ARM_MARGIN_S)
        target = frames + 1
        land = self._frame_wall(target)
        request = s9.command(
            s9.Cmd.TIME_CODE_PRESET, s9.encode_time(s9.TimeData.from_frames(target, rate.timebase))
        )
        stamped = await self._timed(request, land)
        self.memory.jammed = True
        reading = TimecodeReading(frames=target, subframe_us=0, rate=rate, jammed=True)
        return Stamped(reading, stamped.sent_at, stamped.received_at)

    async def preset(self, frames: int, rate: FrameRate) -> TimecodeReading:
        await self.link.call(
            s9.command(
                s9.Cmd.TIME_CODE_PRESET,
                s9.encode_time(s9.TimeData.from_frames(frames, rate.timebase)),
            )
        )
        self.memory.jammed = False
        return TimecodeReading(frames=frames, subframe_us=0, rate=rate, jammed=False)

    async def clip_ids(self) -> list[int]:
        return [c.clip_id for c in self.memory.clips]

    async def clip_info(self, clip_id: int) -> ClipInfo:
        for clip in self.memory.clips:
            if clip.clip_id == clip_id:
                out = (
                    clip.timecode_out
                    if clip.timecode_out is not None
                    else clip.timecode_in + clip.frames
                )
                return ClipInfo(
                    clip_id=clip.clip_id,
                    scene=clip.scene,
                    take=clip.take,
                    roll=clip.roll,
                    timecode_in=clip.timecode_in,
                    timecode_out=out,
                    rate=self.rate,
                    frames=clip.frames,
                    bytes=clip.bytes,
                    codec=Codec.PRORES_422_HQ,
                    bitrate_kbps=self.gear.bitrate_kbps,
                    closed=clip.timecode_out is not None,
                )
        raise CommandRejected(f"{self.name}: no clip {clip_id} recorded by this daemon")

    async def format_media(self) -> None:
        raise CommandRejected(f"{self.name} is a 9-pin recorder: format its media on the deck")

    async def delete_clip(self, clip_id: int) -> None:
        raise CommandRejected(f"{self.name} is a 9-pin recorder: delete clips on the deck")

    async def set_awake(self, awake: bool) -> CameraStatus:
        await self._transport(s9.Cmd.STANDBY_ON if awake else s9.Cmd.STANDBY_OFF)
        return await self.poll()

    async def clear_error(self) -> CameraStatus:
        return await self.poll()

    async def error_report(self) -> ErrorReport:
        raise CommandRejected(f"{self.name} is a 9-pin recorder: it keeps no error report")

    # -- internals ------------------------------------------------------------------------

    async def _transport(self, cmd: s9.Cmd) -> None:
        reply = await self.link.call(s9.command(cmd))
        if reply.reply.command is not s9.Cmd.ACK:
            raise LinkError(f"{self.name}: answered {reply.reply.name()} to {cmd.name}")

    async def _timed(self, request: bytes, land_at: float) -> Stamped[s9.Block]:
        """Write `request` so its last byte lands at wall instant `land_at` on the deck's
        clock (corrected by the measured offset): the line is taken early so no poll is on it."""
        offset = self._offset_s()
        write_at = land_at - offset - wire_s(len(request))
        await asyncio.sleep(max(0.0, write_at - ARM_MARGIN_S - self.link.wall()))
        async with self.link.lock:
            stamped = await self.link.call_locked(request, at=write_at)
        if stamped.reply.command is not s9.Cmd.ACK:
            raise LinkError(f"{self.name}: answered {stamped.reply.name()}")
        return stamped

    def _offset_s(self) -> float:
        reading = self.measured_clock()
        return reading.offset_s if reading is not None else 0.0

    def _frame_wall(self, frame: int) -> float:
        """The wall instant reference frame `frame` (today) begins."""
        now = self.link.wall()
        day = now - now % 86400.0
        at = day + frame / self.rate.fps
        return at + 86400.0 if at < now - 43200.0 else at

    def _account(self, frames_now: int) -> None:
        clip = self.memory.current
        if clip is None:
            return
        frames = max(0, frames_now - clip.timecode_in)
        byte_rate = self.gear.bitrate_kbps * 1000 / 8
        new_bytes = round(frames / self.rate.fps * byte_rate)
        self.memory.media_used += new_bytes - clip.bytes
        clip.frames, clip.bytes = frames, new_bytes
