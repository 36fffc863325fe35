"""A cinema camera: states, media filling at the bitrate, clips, timecode drift, heat, draw.

Timecode runs on wall time (the daemon jams it from its own wall clock); everything physical
(media, temperature, draw transients) runs on the physics clock, which a bench may speed up.
State changes that fall between two observations (a scheduled start, media running full, an
over-temperature trip) are placed at their exact instant, not at the next tick.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from hil.models.base import ModelEvent, Refusal, first_order, time_to_reach
from protocols.messages.camera import (
    CameraError,
    CameraSettings,
    CameraState,
    Codec,
)
from protocols.messages.common import EventCode, NackCode, Severity
from protocols.timecode import START_NOW, FrameRate, format_timecode

UHD_25_PIXEL_RATE = 3840 * 2160 * 25.0
_EPS = 1e-9
MAX_ARM_AHEAD_S = 3600.0
CLOCK_HISTORY = 64  # clock settings remembered for ground-truth queries


class Clock(Protocol):
    speed: float

    def now(self) -> float: ...


class MediaObserver(Protocol):
    """Keeps something (hil/media.py's card folder) in step with the clips on the media."""

    def clip_closed(self, clip: Clip) -> None: ...

    def clip_deleted(self, clip: Clip) -> None: ...

    def formatted(self) -> None: ...


@dataclass
class CameraParams:
    """Defaults from ../shared/reference/gear.md and iss-budgets.md (see hil/MODELS.md)."""

    model: str = "SimCam S35"
    firmware: str = "1.4.2"
    media_capacity_bytes: int = 2_000_000_000_000  # 2 TB card
    drift_ppm: float = 40.0  # free-running oscillator error
    tc_offset_s: float = 0.0  # clock error at power-on, before any jam
    sleep_w: float = 1.0
    standby_w: float = 10.0
    armed_w: float = 12.0
    sensor_w: float = 8.0  # extra while recording UHD at 25 fps, scales with pixel rate
    encoder_w_per_gbps: float = 8.0  # extra per Gbit/s of recorded bitrate
    inrush_w: float = 30.0  # drawn while booting after power is applied
    inrush_s: float = 1.0
    ambient_c: float = 22.0  # ISS cabin air
    thermal_resistance_c_per_w: float = 1.5  # steady-state rise per watt dissipated
    thermal_time_constant_s: float = 600.0
    over_temperature_c: float = 70.0  # recording stops and the camera enters ERROR
    resume_temperature_c: float = 60.0  # CLEAR_ERROR accepted below this
    heartbeat_ms: int = 1000
    settings: CameraSettings = field(
        default_factory=lambda: CameraSettings(
            width=3840,
            height=2160,
            rate=FrameRate.FPS_25,
            codec=Codec.PRORES_422_HQ,
            bitrate_kbps=700_000,
            shutter_decideg=1800,
            iso=800,
            white_balance_k=5600,
        )
    )


@dataclass
class Clip:
    clip_id: int
    scene: str
    take: int
    roll: str
    timecode_in: int
    rate: FrameRate
    codec: Codec
    bitrate_kbps: int
    frames: int = 0
    bytes: float = 0.0
    closed: bool = False

    @property
    def timecode_out(self) -> int:
        return (self.timecode_in + self.frames) % self.rate.frames_per_day


class CameraModel:
    """One camera body with its media card; advance() brings it to the current instant."""

    def __init__(
        self,
        params: CameraParams,
        clock: Clock,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.params = params
        self.clock = clock
        self.wall = wall
        self.powered = True
        self.state = CameraState.STANDBY
        self.settings = params.settings
        self.error = CameraError.NONE
        self.error_detail = ""
        self.error_timecode = 0
        self.error_clip = 0
        self.temperature_c = params.ambient_c
        self.media_used = 0.0
        self.clips: list[Clip] = []
        self.current: Clip | None = None
        self.cooling_factor = 1.0  # fault: >1 means blocked vents
        self.events: list[ModelEvent] = []
        self.card: MediaObserver | None = None  # the clips as files, when the bench has them
        self._next_clip_id = 1
        self._last_t = clock.now()
        self._inrush_until = self._last_t + params.inrush_s
        self._arm_wall = 0.0
        self._arm_tc = 0
        self._jammed = False
        self._ref_wall = 0.0
        self._ref_tc_s = 0.0
        # Ground truth for tests: every (re)setting of the clock, so its offset from the wall
        # is known at any past instant, not only now.
        self._clock_history: collections.deque[tuple[float, float]] = collections.deque(
            maxlen=CLOCK_HISTORY
        )
        now = wall()
        self._set_clock(now, now % 86400.0 + params.tc_offset_s)

    # -- observation -----------------------------------------------------------------------

    @property
    def rate(self) -> FrameRate:
        return self.settings.rate

    @property
    def jammed(self) -> bool:
        return self._jammed

    @property
    def byte_rate(self) -> float:
        return self.settings.bitrate_kbps * 1000.0 / 8.0

    @property
    def media_free(self) -> float:
        return max(0.0, self.params.media_capacity_bytes - self.media_used)

    def draw_w(self) -> float:
        """Electrical draw right now (the value a PDU channel measures)."""
        return self._draw_at(self.clock.now())

    def timecode(self) -> tuple[int, int]:
        """(frame count, microseconds into the frame) of the camera's own clock now."""
        exact = self._tc_seconds(self.wall()) * self.rate.fps
        whole = math.floor(exact)
        subframe_us = int((exact - whole) / self.rate.fps * 1e6)
        return whole % self.rate.frames_per_day, min(subframe_us, 999_999)

    def frames_recorded(self, clip: Clip) -> int:
        """Frames in `clip` so far (live while it is rolling)."""
        if clip.closed or clip is not self.current or self.state is not CameraState.RECORDING:
            return clip.frames
        return (self.timecode()[0] - clip.timecode_in) % clip.rate.frames_per_day

    def clip(self, clip_id: int) -> Clip:
        for clip in self.clips:
            if clip.clip_id == clip_id:
                return clip
        raise Refusal(NackCode.NOT_FOUND, f"no clip {clip_id}")

    # -- time ------------------------------------------------------------------------------

    def advance(self) -> None:
        """Integrate heat and media up to now, handling every state change on the way."""
        now = self.clock.now()
        params = self.params
        tau = params.thermal_time_constant_s
        while self._last_t < now - _EPS:
            t0 = self._last_t
            end = now
            if self.state is CameraState.ARMED:
                end = min(end, self._phys_at_wall(self._arm_wall))
            if self._inrush_until > t0:
                end = min(end, self._inrush_until)
            target = self._steady_temperature(self._draw_at(t0))
            if self.state is CameraState.RECORDING:
                end = min(end, t0 + self.media_free / self.byte_rate)
                end = min(
                    end,
                    t0 + time_to_reach(self.temperature_c, target, params.over_temperature_c, tau),
                )
            dt = max(0.0, end - t0)
            self.temperature_c = first_order(self.temperature_c, target, dt, tau)
            if self.state is CameraState.RECORDING and self.current is not None:
                gained = min(self.byte_rate * dt, self.media_free)
                self.media_used += gained
                self.current.bytes += gained
            self._last_t = max(end, t0)
            self._boundary(self._last_t)

    def _boundary(self, t: float) -> None:
        params = self.params
        if self.state is CameraState.ARMED and t >= self._phys_at_wall(self._arm_wall) - _EPS:
            self.state = CameraState.RECORDING
            self._event(EventCode.RECORD_STARTED, Severity.INFO, self._arm_tc, "rolling", t)
        if self.state is not CameraState.RECORDING:
            return
        if self.media_free < 1.0:
            self._close_clip(t)
            self.state = CameraState.STANDBY
            self._set_error(CameraError.MEDIA_FULL, "media full: recording stopped", t)
            self._event(EventCode.MEDIA_FULL, Severity.WARNING, 0, "media full", t)
        elif self.temperature_c >= params.over_temperature_c - 1e-6:
            self._close_clip(t)
            self.state = CameraState.ERROR
            self._set_error(
                CameraError.OVER_TEMPERATURE,
                f"over temperature {self.temperature_c:.1f} C: recording stopped",
                t,
            )
            self._event(
                EventCode.OVER_TEMPERATURE,
                Severity.CRITICAL,
                round(self.temperature_c * 100),
                "over temperature",
                t,
            )

    # -- commands --------------------------------------------------------------------------

    def record_start(self, scene: str, take: int, roll: str, start_timecode: int) -> Clip:
        self.advance()
        if self.state is CameraState.OFF:
            raise Refusal(NackCode.BAD_STATE, "camera is asleep; wake it first")
        if self.state in (CameraState.ARMED, CameraState.RECORDING):
            raise Refusal(NackCode.BAD_STATE, "already recording")
        if self.state is CameraState.ERROR:
            code = (
                NackCode.OVER_TEMPERATURE
                if self.error is CameraError.OVER_TEMPERATURE
                else NackCode.BAD_STATE
            )
            raise Refusal(code, f"camera in error: {self.error_detail}")
        if self.media_free < self.byte_rate:
            raise Refusal(NackCode.MEDIA_FULL, f"{self.media_free / 1e9:.2f} GB free")
        if self.temperature_c >= self.params.over_temperature_c:
            raise Refusal(NackCode.OVER_TEMPERATURE, f"{self.temperature_c:.1f} C")
        rate = self.rate
        now_frames, _ = self.timecode()
        start = (now_frames + 1) % rate.frames_per_day
        if start_timecode != START_NOW:
            if start_timecode >= rate.frames_per_day:
                raise Refusal(NackCode.OUT_OF_RANGE, f"start timecode {start_timecode} > 24 h")
            ahead = (start_timecode - now_frames) % rate.frames_per_day
            if ahead > MAX_ARM_AHEAD_S * rate.fps and ahead < rate.frames_per_day // 2:
                raise Refusal(NackCode.OUT_OF_RANGE, "start timecode more than an hour ahead")
            if 0 < ahead < rate.frames_per_day // 2:
                start = start_timecode  # in the future: wait for it; else start late, at once
        self._arm_tc = start
        self._arm_wall = self._wall_at_frame(start)
        clip = Clip(
            clip_id=self._next_clip_id,
            scene=scene,
            take=take,
            roll=roll,
            timecode_in=start,
            rate=rate,
            codec=self.settings.codec,
            bitrate_kbps=self.settings.bitrate_kbps,
        )
        self._next_clip_id += 1
        self.clips.append(clip)
        self.current = clip
        self.state = CameraState.ARMED
        return clip

    def record_stop(self) -> Clip:
        self.advance()
        clip = self.current
        if self.state is CameraState.ARMED and clip is not None:
            self.clips.remove(clip)
            self.current = None
            self.state = CameraState.STANDBY
            clip.closed = True
            return clip
        if self.state is not CameraState.RECORDING or clip is None:
            raise Refusal(NackCode.BAD_STATE, f"not recording ({self.state.name})")
        self._close_clip()
        self.state = CameraState.STANDBY
        self._event(EventCode.RECORD_STOPPED, Severity.INFO, clip.clip_id, "cut", self._last_t)
        return clip

    def apply_settings(self, settings: CameraSettings) -> CameraSettings:
        self.advance()
        if self.state in (CameraState.ARMED, CameraState.RECORDING):
            raise Refusal(NackCode.BAD_STATE, "settings cannot change while recording")
        self._rebase_clock()
        self.settings = settings
        return settings

    def preset_timecode(self, frames: int, rate: FrameRate) -> None:
        self._require_rate(rate)
        self._set_clock(self.wall(), frames / rate.fps)
        self._jammed = False

    def jam_timecode(self, frames: int, subframe_us: int, rate: FrameRate) -> None:
        self._require_rate(rate)
        self._set_clock(self.wall(), frames / rate.fps + subframe_us / 1e6)
        self._jammed = True

    def clock_offset_s(self, wall_instant: float | None = None) -> float:
        """Ground truth: how far the camera's clock was ahead of wall time (time of day) at
        `wall_instant` (now when None), from the clock setting then in force."""
        wall = self.wall() if wall_instant is None else wall_instant
        ref_wall, ref_tc_s = self._clock_history[0]
        for since, tc_s in self._clock_history:
            if since <= wall:
                ref_wall, ref_tc_s = since, tc_s
        camera_s = ref_tc_s + (wall - ref_wall) * (1.0 + self.params.drift_ppm * 1e-6)
        return (camera_s - wall % 86400.0 + 43200.0) % 86400.0 - 43200.0

    def format_media(self) -> None:
        self.advance()
        if self.state is not CameraState.STANDBY:
            raise Refusal(NackCode.BAD_STATE, f"format needs STANDBY, camera is {self.state.name}")
        self.clips.clear()
        self.current = None
        self.media_used = 0.0
        if self.card is not None:
            self.card.formatted()
        if self.error is CameraError.MEDIA_FULL:
            self._set_error(CameraError.NONE, "")

    def delete_clip(self, clip_id: int) -> Clip:
        self.advance()
        clip = self.clip(clip_id)
        if not clip.closed:
            raise Refusal(NackCode.BAD_STATE, f"clip {clip_id} is still recording")
        self.clips.remove(clip)
        self.media_used = max(0.0, self.media_used - clip.bytes)
        if self.card is not None:
            self.card.clip_deleted(clip)
        return clip

    def set_awake(self, awake: bool) -> None:
        self.advance()
        if self.state in (CameraState.ARMED, CameraState.RECORDING):
            raise Refusal(NackCode.BAD_STATE, "cut before putting the camera to sleep")
        if awake and self.state is CameraState.OFF:
            self.state = CameraState.STANDBY
        elif not awake and self.state in (CameraState.STANDBY, CameraState.ERROR):
            self.state = CameraState.OFF

    def clear_error(self) -> None:
        self.advance()
        if self.error is CameraError.OVER_TEMPERATURE and (
            self.temperature_c >= self.params.resume_temperature_c
        ):
            raise Refusal(
                NackCode.OVER_TEMPERATURE,
                f"{self.temperature_c:.1f} C; cool below {self.params.resume_temperature_c:.0f} C",
            )
        if self.error is CameraError.MEDIA_FULL and self.media_free < self.byte_rate:
            raise Refusal(NackCode.MEDIA_FULL, "media still full: delete clips or format first")
        if self.state is CameraState.ERROR:
            self.state = CameraState.STANDBY
        self._set_error(CameraError.NONE, "")

    # -- power and reset -------------------------------------------------------------------

    def reset(self) -> None:
        """Firmware restart: the open clip is closed as recovered, volatile state is lost."""
        self.advance()
        if self.current is not None and self.state is CameraState.RECORDING:
            self._close_clip()
        elif self.current is not None:
            self.clips.remove(self.current)
            self.current = None
        self.state = CameraState.STANDBY
        self.settings = self.params.settings
        self._set_error(CameraError.NONE, "")
        self._jammed = False
        self._inrush_until = self.clock.now() + self.params.inrush_s

    def set_powered(self, powered: bool) -> None:
        if powered == self.powered:
            return
        self.advance()
        if not powered:
            self.reset()
            self._inrush_until = 0.0
        self.powered = powered
        if powered:
            self._inrush_until = self.clock.now() + self.params.inrush_s

    # -- internals -------------------------------------------------------------------------

    def _require_rate(self, rate: FrameRate) -> None:
        if rate is not self.rate:
            raise Refusal(
                NackCode.OUT_OF_RANGE,
                f"timecode rate {rate.fps:g} differs from the project rate {self.rate.fps:g}",
            )

    def _draw_at(self, t: float) -> float:
        params = self.params
        if not self.powered:
            return 0.0
        if t < self._inrush_until:
            return params.inrush_w
        if self.state is CameraState.OFF:
            return params.sleep_w
        if self.state is CameraState.ARMED:
            return params.armed_w
        if self.state is CameraState.RECORDING:
            s = self.settings
            load = s.width * s.height * s.rate.fps / UHD_25_PIXEL_RATE
            gbps = s.bitrate_kbps / 1e6
            return params.standby_w + params.sensor_w * load + params.encoder_w_per_gbps * gbps
        return params.standby_w

    def _steady_temperature(self, draw_w: float) -> float:
        r = self.params.thermal_resistance_c_per_w * self.cooling_factor
        return self.params.ambient_c + r * draw_w

    def _tc_seconds(self, wall: float) -> float:
        return self._ref_tc_s + (wall - self._ref_wall) * (1.0 + self.params.drift_ppm * 1e-6)

    def _rebase_clock(self) -> None:
        wall = self.wall()
        self._set_clock(wall, self._tc_seconds(wall))

    def _set_clock(self, wall: float, tc_s: float) -> None:
        self._ref_wall = wall
        self._ref_tc_s = tc_s
        self._clock_history.append((wall, tc_s))

    def _wall_at_frame(self, frame: int) -> float:
        """The wall instant the camera's clock next reaches the start of `frame`."""
        wall = self.wall()
        day_s = self.rate.frames_per_day / self.rate.fps
        target_s = frame / self.rate.fps
        now_s = self._tc_seconds(wall) % day_s
        ahead_s = (target_s - now_s) % day_s
        return wall + ahead_s / (1.0 + self.params.drift_ppm * 1e-6)

    def _phys_at_wall(self, wall_instant: float) -> float:
        return self.clock.now() - (self.wall() - wall_instant) * self.clock.speed

    def _wall_at_phys(self, t: float) -> float:
        return self.wall() - (self.clock.now() - t) / self.clock.speed

    def _frames_at(self, t: float | None) -> int:
        """The camera's frame count at physics time `t` (now when None)."""
        wall = self.wall() if t is None else self._wall_at_phys(t)
        return math.floor(self._tc_seconds(wall) * self.rate.fps) % self.rate.frames_per_day

    def _close_clip(self, t: float | None = None) -> None:
        """Close the open clip at physics time `t` (now when None)."""
        clip = self.current
        if clip is None:
            return
        wall = self.wall() if t is None else self._wall_at_phys(t)
        frames_now = math.floor(self._tc_seconds(wall) * clip.rate.fps)
        frames_now %= clip.rate.frames_per_day
        clip.frames = (frames_now - clip.timecode_in) % clip.rate.frames_per_day
        clip.closed = True
        self.current = None
        if self.card is not None:
            self.card.clip_closed(clip)

    def _set_error(self, error: CameraError, detail: str, t: float | None = None) -> None:
        self.error = error
        self.error_detail = detail
        if error is not CameraError.NONE:
            self.error_timecode = self._frames_at(t)
            self.error_clip = self.clips[-1].clip_id if self.clips else 0

    def _event(
        self, code: EventCode, severity: Severity, value: int, detail: str, t: float
    ) -> None:
        self.events.append(ModelEvent(code, severity, value, detail, t))

    def describe(self) -> dict[str, object]:
        """Observable state for the bench control interface and tests."""
        self.advance()
        frames, _ = self.timecode()
        return {
            "state": self.state.name,
            "powered": self.powered,
            "timecode": format_timecode(frames, self.rate),
            "timecode_frames": frames,
            "jammed": self._jammed,
            "clock_offset_s": self.clock_offset_s(),
            "temperature_c": round(self.temperature_c, 3),
            "draw_w": round(self.draw_w(), 3),
            "media_used_bytes": int(self.media_used),
            "media_capacity_bytes": self.params.media_capacity_bytes,
            "error": self.error.name,
            "settings": {
                "rate": self.rate.fps,
                "bitrate_kbps": self.settings.bitrate_kbps,
                "codec": self.settings.codec.name,
                "width": self.settings.width,
                "height": self.settings.height,
                "shutter_decideg": self.settings.shutter_decideg,
                "iso": self.settings.iso,
                "white_balance_k": self.settings.white_balance_k,
            },
            "clips": [
                {
                    "clip_id": c.clip_id,
                    "scene": c.scene,
                    "take": c.take,
                    "roll": c.roll,
                    "timecode_in": c.timecode_in,
                    "timecode_out": c.timecode_out,
                    "frames": c.frames,
                    "bytes": int(c.bytes),
                    "closed": c.closed,
                }
                for c in self.clips
            ],
        }
