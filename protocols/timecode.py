"""SMPTE-style timecode as carried on the wire: a frame count and a rate code.

A timecode value is the number of frames since 00:00:00:00 at the project rate. Labels use
the integer timebase (24 for 23.976, 30 for 29.97, non-drop-frame), so a 23.976 clock shows
24 labels per timecode second while running 0.1 % slower than wall time, as real cameras do.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass

from protocols.errors import MessageError


class FrameRate(enum.IntEnum):
    """Rate codes (u8 on the wire)."""

    FPS_23_976 = 1
    FPS_24 = 2
    FPS_25 = 3
    FPS_29_97 = 4
    FPS_30 = 5

    @property
    def fps(self) -> float:
        return _RATES[self][0]

    @property
    def timebase(self) -> int:
        """Frames per timecode second in the HH:MM:SS:FF label."""
        return _RATES[self][1]

    @property
    def frame_seconds(self) -> float:
        return 1.0 / self.fps

    @property
    def frames_per_day(self) -> int:
        return self.timebase * 86400

    @classmethod
    def from_fps(cls, fps: float) -> FrameRate:
        for rate, (value, _) in _RATES.items():
            if math.isclose(value, fps, abs_tol=0.001):
                return rate
        allowed = ", ".join(f"{v:g}" for v, _ in _RATES.values())
        raise ValueError(f"frame rate {fps:g} is not supported; use one of {allowed}")


_RATES: dict[FrameRate, tuple[float, int]] = {
    FrameRate.FPS_23_976: (24000 / 1001, 24),
    FrameRate.FPS_24: (24.0, 24),
    FrameRate.FPS_25: (25.0, 25),
    FrameRate.FPS_29_97: (30000 / 1001, 30),
    FrameRate.FPS_30: (30.0, 30),
}

START_NOW = 0xFFFFFFFF  # "no scheduled timecode": act on receipt
_LABEL = re.compile(r"^(\d{2}):(\d{2}):(\d{2})[:;](\d{2})$")


@dataclass(frozen=True, slots=True)
class Timecode:
    frames: int
    rate: FrameRate

    def __str__(self) -> str:
        return format_timecode(self.frames, self.rate)


def format_timecode(frames: int, rate: FrameRate) -> str:
    base = rate.timebase
    frames %= rate.frames_per_day
    seconds, ff = divmod(frames, base)
    minutes, ss = divmod(seconds, 60)
    hh, mm = divmod(minutes, 60)
    return f"{hh:02d}:{mm:02d}:{ss:02d}:{ff:02d}"


def parse_timecode(label: str, rate: FrameRate) -> int:
    match = _LABEL.match(label.strip())
    if not match:
        raise MessageError(f"timecode {label!r} is not HH:MM:SS:FF")
    hh, mm, ss, ff = (int(g) for g in match.groups())
    if hh > 23 or mm > 59 or ss > 59 or ff >= rate.timebase:
        raise MessageError(f"timecode {label!r} is out of range at {rate.fps:g} fps")
    return ((hh * 60 + mm) * 60 + ss) * rate.timebase + ff


def frames_at(seconds_since_midnight: float, rate: FrameRate) -> tuple[int, float]:
    """Frame count and the fraction of the current frame elapsed, for a time of day."""
    exact = seconds_since_midnight * rate.fps
    whole = math.floor(exact)
    return whole % rate.frames_per_day, exact - whole
