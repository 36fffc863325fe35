"""The daemon's timecode reference: time of day (UTC) at the project frame rate.

Cameras are jammed from this clock. A jam is stamped for the instant its last byte reaches
the camera (the instant its bytes are written plus the frame's wire time at the link's
baud), so the camera starts counting from the right sub-frame rather than from when we
happened to build the request.

A camera's clock is read the way NTP reads a server's: the camera read it somewhere between
our request's arrival (written + request wire time) and its reply's departure (read - reply
wire time). Taking the middle of that span leaves at most half of it, (round trip - wire
time) / 2, as error, and that bound is reported with every offset. Of several readings the
one with the shortest round trip is kept (NTP's minimum-delay filter): queueing and
scheduling delays only ever lengthen a round trip, so the shortest carries the least.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

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


@dataclass(frozen=True)
class ClockReading:
    """How far a camera's clock is ahead of the reference, and how sure we are of it: the
    true offset lies within `offset_s` +- `uncertainty_s` (given the link's baud)."""

    offset_s: float
    uncertainty_s: float
    at: float  # wall instant the camera most likely read its clock (the span's middle)
    round_trip_s: float

    def in_frames(self, rate: FrameRate) -> tuple[float, float]:
        """(offset, uncertainty) in frames at `rate`."""
        return self.offset_s * rate.fps, self.uncertainty_s * rate.fps


def clock_reading(
    reference: ReferenceClock,
    frames: int,
    subframe_us: int,
    *,
    sent_at: float,
    received_at: float,
    request_wire_s: float,
    reply_wire_s: float,
) -> ClockReading:
    """One reading of a camera clock, placed in time between the request's arrival and the
    reply's departure. A span that comes out negative (a link faster than its configured
    baud) is taken as zero rather than as a bound."""
    earliest = sent_at + request_wire_s
    latest = received_at - reply_wire_s
    at = (earliest + latest) / 2
    return ClockReading(
        offset_s=reference.offset_s(frames, subframe_us, at),
        uncertainty_s=max(0.0, latest - earliest) / 2,
        at=at,
        round_trip_s=received_at - sent_at,
    )


def least_delayed(readings: Iterable[ClockReading]) -> ClockReading:
    """NTP's minimum-delay filter: the reading with the shortest round trip."""
    return min(readings, key=lambda r: r.round_trip_s)
