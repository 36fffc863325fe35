"""The daemon's timecode reference: time of day (UTC) at the project frame rate.

Cameras are jammed from this clock. A jam is stamped for the instant its last byte reaches
the camera (send time plus the frame's wire time at the link's baud), so the camera starts
counting from the right sub-frame rather than from when we happened to write.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from protocols.timecode import FrameRate, frames_at

BITS_PER_BYTE = 10


class ReferenceClock:
    def __init__(self, rate: FrameRate, wall: Callable[[], float] = time.time) -> None:
        self.rate = rate
        self.wall = wall

    def at(self, wall_instant: float) -> tuple[int, int]:
        """(frames, microseconds into the frame) at a wall-clock instant."""
        frames, fraction = frames_at(wall_instant % 86400.0, self.rate)
        return frames, min(999_999, int(fraction * self.rate.frame_seconds * 1e6))

    def now(self) -> tuple[int, int]:
        return self.at(self.wall())

    def seconds_of(self, frames: int, subframe_us: int = 0) -> float:
        """Timecode seconds (since midnight) of a camera reading, for drift arithmetic."""
        return frames / self.rate.fps + subframe_us / 1e6

    def offset_s(self, frames: int, subframe_us: int, wall_instant: float) -> float:
        """How far a camera reading taken at `wall_instant` is ahead of the reference."""
        delta = self.seconds_of(frames, subframe_us) - wall_instant % 86400.0
        return (delta + 43200.0) % 86400.0 - 43200.0


def wire_seconds(n_bytes: int, baud: int) -> float:
    return n_bytes * BITS_PER_BYTE / baud
