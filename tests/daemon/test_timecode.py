"""Reading a camera clock over a link: the reported offset holds the truth within its
reported uncertainty, whatever the delays, and the least delayed reading is kept."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_host.workflow.timecode import (
    ClockReading,
    ReferenceClock,
    clock_reading,
    least_delayed,
)
from protocols.timecode import FrameRate

REFERENCE = ReferenceClock(FrameRate.FPS_25)
NOON = 1_800_000_000 - 1_800_000_000 % 86400 + 43_200.0
WIRE_IN, WIRE_OUT = 12 * 10 / 115200, 22 * 10 / 115200

delay = st.floats(0, 0.05)


def camera_reads(true_offset_s: float, wall: float) -> tuple[int, int]:
    """(frames, subframe_us) a camera `true_offset_s` ahead shows at `wall`."""
    exact = (wall % 86400 + true_offset_s) * 25
    whole = math.floor(exact)
    return whole, int((exact - whole) / 25 * 1e6)


def exchange(
    true_offset_s: float, sent: float, before: float, acting: float, after: float
) -> ClockReading:
    """One TIMECODE_GET: the host waits `before` to write, the camera `acting` to answer,
    the host `after` to read the reply; only what the host can see goes in."""
    read_at = sent + before + WIRE_IN + acting
    frames, subframe_us = camera_reads(true_offset_s, read_at)
    received = read_at + WIRE_OUT + after
    return clock_reading(
        REFERENCE, frames, subframe_us, sent_at=sent, received_at=received,
        request_wire_s=WIRE_IN, reply_wire_s=WIRE_OUT,
    )  # fmt: skip


@given(offset=st.floats(-2.0, 2.0), before=delay, acting=delay, after=delay)
def test_the_truth_lies_within_the_reported_uncertainty(
    offset: float, before: float, acting: float, after: float
) -> None:
    reading = exchange(offset, NOON, before, acting, after)
    # within the bound, give or take the us of a reading and the float ulp of a unix time
    assert abs(reading.offset_s - offset) <= reading.uncertainty_s + 2e-6
    slack = reading.round_trip_s - WIRE_IN - WIRE_OUT
    assert reading.uncertainty_s == pytest.approx(max(0.0, slack) / 2, abs=1e-6)


def test_without_delay_the_reading_is_exact_and_certain() -> None:
    reading = exchange(0.0123, NOON, 0.0, 0.0, 0.0)
    assert abs(reading.offset_s - 0.0123) < 2e-6 and reading.uncertainty_s < 1e-9


@given(delays=st.lists(st.tuples(delay, delay, delay), min_size=1, max_size=8))
def test_the_least_delayed_reading_is_kept(delays: list[tuple[float, float, float]]) -> None:
    readings = [exchange(0.5, NOON + i, *d) for i, d in enumerate(delays)]
    best = least_delayed(readings)
    assert best.round_trip_s == min(r.round_trip_s for r in readings)
    assert best.uncertainty_s == min(r.uncertainty_s for r in readings)
    assert abs(best.offset_s - 0.5) <= best.uncertainty_s + 2e-6


def test_a_scheduling_delay_no_longer_lands_in_the_offset() -> None:
    """The old reading assumed the camera acted at send + wire time: an 18 ms delay before
    the write became an 18 ms (0.45 frame) error. Now it only widens the bound, and a
    second, undelayed reading tightens it again."""
    delayed = exchange(0.0, NOON, 0.018, 0.0, 0.0)
    assert abs(delayed.offset_s) <= delayed.uncertainty_s <= 0.0091
    prompt = exchange(0.0, NOON + 1, 0.0, 0.0002, 0.0)
    assert least_delayed([delayed, prompt]) is prompt and prompt.uncertainty_s <= 0.00011
