"""A 9-pin deck's clock, read to the whole frame, located far better than a frame."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from firmware_host.gear.sony9pin import frame_bounded_offset
from firmware_host.workflow.timecode import ReferenceClock
from protocols.timecode import FrameRate

FPS = 25
T0 = 1_800_000_000.0


def read_deck(offset_s: float, sample: float) -> int:
    """The frame a deck ahead of the reference by `offset_s` shows at wall instant `sample`."""
    return math.floor((sample % 86400.0 + offset_s) * FPS)


@given(
    st.floats(-3.0, 3.0),
    st.lists(
        st.tuples(st.floats(0.0, 0.05), st.floats(0.0, 0.004), st.floats(0.0, 0.004)),
        min_size=1,
        max_size=8,
    ),
)
def test_the_true_offset_is_always_within_the_bounds(
    offset_s: float, samples: list[tuple[float, float, float]]
) -> None:
    reference = ReferenceClock(FrameRate.FPS_25, wall=lambda: T0)
    readings, t = [], T0
    for gap, before, after in samples:
        t += gap
        readings.append((read_deck(offset_s, t), t - before, t + after))
    reading = frame_bounded_offset(reference, readings)
    assert reading is not None
    assert abs(reading.offset_s - offset_s) <= reading.uncertainty_s + 1e-9


@given(st.floats(-3.0, 3.0), st.floats(0.0, 0.04))
def test_readings_spread_over_a_frame_pin_it_to_their_spacing(
    offset_s: float, start: float
) -> None:
    """Five readings 8 ms apart, each known within 1 ms: the offset to about 5 ms, not 40."""
    reference = ReferenceClock(FrameRate.FPS_25, wall=lambda: T0)
    instants = [T0 + start + i * 0.008 for i in range(5)]
    readings = [(read_deck(offset_s, t), t - 0.0005, t + 0.0005) for t in instants]
    reading = frame_bounded_offset(reference, readings)
    assert reading is not None
    assert reading.uncertainty_s <= 0.008 / 2 + 0.001
    assert abs(reading.offset_s - offset_s) <= reading.uncertainty_s + 1e-9


def test_disagreeing_readings_give_no_bound() -> None:
    reference = ReferenceClock(FrameRate.FPS_25, wall=lambda: T0)
    assert frame_bounded_offset(reference, []) is None
    late = [(read_deck(0.0, T0), T0, T0 + 0.001), (read_deck(0.0, T0) + 3, T0, T0 + 0.001)]
    assert frame_bounded_offset(reference, late) is None
