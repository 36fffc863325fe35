"""Camera physics: media, timecode drift, heat, draw, and the state machine that binds them."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from hil.models.base import ManualClock, Refusal
from hil.models.camera import CameraModel, CameraParams
from protocols.messages.camera import CameraError, CameraSettings, CameraState, Codec
from protocols.messages.common import EventCode, NackCode
from protocols.timecode import START_NOW, FrameRate

MIDNIGHT_PLUS_10H = 1_800_000_000 - 1_800_000_000 % 86400 + 36_000.0


def camera(**params: object) -> tuple[CameraModel, ManualClock]:
    clock = ManualClock(MIDNIGHT_PLUS_10H)
    model = CameraModel(CameraParams(**params), clock, wall=clock.now)  # type: ignore[arg-type]
    clock.advance(5)  # past the boot inrush
    return model, clock


def test_media_fills_at_the_recorded_bitrate() -> None:
    model, clock = camera()
    model.record_start("1", 1, "A001", START_NOW)
    clock.advance(100.0)
    model.advance()
    assert model.state is CameraState.RECORDING
    # 700,000 kbit/s for 100 s (less the fraction of a frame spent armed)
    assert model.media_used == pytest.approx(700e6 / 8 * 100, rel=1e-3)
    clip = model.record_stop()
    assert clip.frames == pytest.approx(100 * 25, abs=1)
    assert clip.bytes == model.media_used


@given(ppm=st.floats(-150, 150), start=st.floats(0, 80_000))
def test_timecode_drifts_by_the_configured_ppm_over_an_hour(ppm: float, start: float) -> None:
    clock = ManualClock(1_800_000_000 - 1_800_000_000 % 86400 + start)
    model = CameraModel(CameraParams(drift_ppm=ppm), clock, wall=clock.now)
    model.jam_timecode(*_reference(clock.now()), FrameRate.FPS_25)
    clock.advance(3600.0)
    frames, subframe_us = model.timecode()
    camera_s = frames / 25 + subframe_us / 1e6
    reference_s = clock.now() % 86400
    drift = (camera_s - reference_s + 43200) % 86400 - 43200
    assert drift == pytest.approx(ppm * 1e-6 * 3600, abs=2e-6)


def _reference(wall: float) -> tuple[int, int]:
    exact = (wall % 86400) * 25
    return math.floor(exact), int((exact - math.floor(exact)) / 25 * 1e6)


def test_a_scheduled_start_lands_on_its_frame() -> None:
    model, clock = camera(drift_ppm=0.0)
    model.jam_timecode(*_reference(clock.now()), FrameRate.FPS_25)
    target = model.timecode()[0] + 10
    clip = model.record_start("4", 2, "A002", target)
    assert model.state is CameraState.ARMED and clip.timecode_in == target
    clock.advance(0.2)
    model.advance()
    assert model.state is CameraState.ARMED  # 5 frames in: still waiting
    clock.advance(0.3)
    model.advance()
    assert model.state is CameraState.RECORDING
    assert [e.code for e in model.events] == [EventCode.RECORD_STARTED]
    clock.advance(4.0)
    assert model.record_stop().timecode_in == target


def test_full_media_stops_the_take_and_refuses_the_next() -> None:
    model, clock = camera(media_capacity_bytes=875_000_000)  # 10 s at 700 Mbit/s
    model.record_start("9", 1, "A001", START_NOW)
    clock.advance(30.0)
    model.advance()
    assert model.state is CameraState.STANDBY
    assert model.error is CameraError.MEDIA_FULL
    assert model.media_used == model.params.media_capacity_bytes
    assert model.clips[-1].closed and model.clips[-1].frames == pytest.approx(250, abs=2)
    with pytest.raises(Refusal) as refusal:
        model.record_start("9", 2, "A001", START_NOW)
    assert refusal.value.code is NackCode.MEDIA_FULL
    with pytest.raises(Refusal) as refusal:
        model.clear_error()  # the card is still full: the error stands until space is freed
    assert refusal.value.code is NackCode.MEDIA_FULL and model.error is CameraError.MEDIA_FULL
    model.format_media()
    assert model.media_used == 0 and model.error is CameraError.NONE


def test_over_temperature_forces_a_stop_and_holds_until_cool() -> None:
    model, clock = camera()
    model.cooling_factor = 3.0  # blocked vents: steady recording would reach ~128 C
    model.record_start("2", 1, "A001", START_NOW)
    clock.advance(3600.0)
    model.advance()
    assert model.state is CameraState.ERROR
    assert model.error is CameraError.OVER_TEMPERATURE
    trip = next(e for e in model.events if e.code is EventCode.OVER_TEMPERATURE)
    assert trip.value / 100 == pytest.approx(model.params.over_temperature_c, abs=0.01)
    assert model.temperature_c < model.params.over_temperature_c  # cooling since the trip
    assert model.clips[-1].closed
    with pytest.raises(Refusal) as refusal:
        model.clear_error()
    assert refusal.value.code is NackCode.OVER_TEMPERATURE
    clock.advance(1800.0)  # standby draw with the same poor cooling settles near 67 C
    model.cooling_factor = 1.0
    clock.advance(1800.0)
    model.clear_error()
    assert model.state is CameraState.STANDBY


@given(low=st.integers(10_000, 1_500_000), high=st.integers(10_000, 1_500_000))
def test_draw_rises_with_bitrate_and_state(low: int, high: int) -> None:
    low, high = sorted((low, high))
    draws = []
    for bitrate in (low, high):
        model, clock = camera()
        standby = model.draw_w()
        settings = model.settings
        model.apply_settings(
            CameraSettings(
                width=settings.width,
                height=settings.height,
                rate=settings.rate,
                codec=Codec.PRORES_422,
                bitrate_kbps=bitrate,
                shutter_decideg=1800,
                iso=800,
                white_balance_k=5600,
            )
        )
        model.record_start("1", 1, "A", START_NOW)
        clock.advance(1.0)
        model.advance()
        draws.append(model.draw_w())
        assert draws[-1] > standby > model.params.sleep_w
    assert draws[0] <= draws[1]


class CameraMachine(RuleBasedStateMachine):
    """Any sequence of commands, faults and elapsed time keeps the camera physically sane."""

    def __init__(self) -> None:
        super().__init__()
        self.model, self.clock = camera(media_capacity_bytes=50_000_000_000)

    @rule(seconds=st.floats(0, 3600))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.model.advance()

    @rule(ahead=st.integers(-100, 200), now=st.booleans())
    def record(self, ahead: int, now: bool) -> None:
        start = START_NOW if now else (self.model.timecode()[0] + ahead) % 2_160_000
        try:
            self.model.record_start("1", 1, "A", start)
        except Refusal as refusal:
            assert refusal.code in (
                NackCode.BAD_STATE, NackCode.MEDIA_FULL, NackCode.OVER_TEMPERATURE,
            )  # fmt: skip

    @rule()
    def cut(self) -> None:
        try:
            self.model.record_stop()
        except Refusal as refusal:
            assert refusal.code is NackCode.BAD_STATE

    @rule(awake=st.booleans())
    def sleep_or_wake(self, awake: bool) -> None:
        try:
            self.model.set_awake(awake)
        except Refusal as refusal:
            assert refusal.code is NackCode.BAD_STATE

    @rule(factor=st.sampled_from([1.0, 1.0, 2.0, 4.0]))
    def cooling(self, factor: float) -> None:
        self.model.advance()
        self.model.cooling_factor = factor

    @rule()
    def clear(self) -> None:
        try:
            self.model.clear_error()
        except Refusal as refusal:
            assert refusal.code in (NackCode.OVER_TEMPERATURE, NackCode.MEDIA_FULL)
            assert self.model.error is not CameraError.NONE  # a refusal changes nothing

    @rule()
    def reset(self) -> None:
        self.model.reset()

    @rule(on=st.booleans())
    def power(self, on: bool) -> None:
        self.model.set_powered(on)

    @precondition(lambda self: self.model.state is CameraState.STANDBY)
    @rule()
    def format_media(self) -> None:
        self.model.format_media()

    @invariant()
    def media_within_the_card(self) -> None:
        assert 0 <= self.model.media_used <= self.model.params.media_capacity_bytes
        assert sum(c.bytes for c in self.model.clips) <= self.model.media_used + 1e-3

    @invariant()
    def temperature_bounded(self) -> None:
        p = self.model.params
        hottest = p.ambient_c + p.thermal_resistance_c_per_w * 4.0 * p.inrush_w
        assert p.ambient_c - 1e-6 <= self.model.temperature_c <= hottest

    @invariant()
    def an_open_clip_means_armed_or_rolling(self) -> None:
        open_clips = [c for c in self.model.clips if not c.closed]
        rolling = self.model.state in (CameraState.ARMED, CameraState.RECORDING)
        assert (len(open_clips) == 1) == rolling and len(open_clips) <= 1
        assert all(c.frames >= 0 for c in self.model.clips)

    @invariant()
    def recording_is_never_hot(self) -> None:
        if self.model.state is CameraState.RECORDING:
            assert self.model.temperature_c < self.model.params.over_temperature_c + 1e-6


TestCameraMachine = CameraMachine.TestCase
