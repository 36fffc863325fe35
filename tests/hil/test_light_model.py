"""Light physics: non-linear draw with standby, fades, heat and fold-back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from hil.models.base import ManualClock
from hil.models.light import LightModel, LightParams, draw_curve, permille_for_draw
from protocols.messages.common import EventCode
from protocols.messages.light import LightFault

pytestmark = pytest.mark.long

PARAMS = LightParams()


@given(a=st.integers(0, 1000), b=st.integers(0, 1000), share=st.floats(0, 1))
def test_draw_is_monotonic_in_intensity(a: int, b: int, share: float) -> None:
    params = LightParams(linear_share=share)
    low, high = sorted((a, b))
    assert draw_curve(params, True, low) <= draw_curve(params, True, high)


def test_draw_is_not_linear_and_has_standby() -> None:
    assert draw_curve(PARAMS, True, 0) == PARAMS.standby_w
    assert draw_curve(PARAMS, False, 0) == PARAMS.off_w
    assert draw_curve(PARAMS, True, 1000) == PARAMS.max_w
    half = draw_curve(PARAMS, True, 500)
    linear_half = (PARAMS.standby_w + PARAMS.max_w) / 2
    assert half < linear_half - 5  # the quadratic share bends the curve down


@given(watts=st.floats(0, 150))
def test_inverse_curve_gives_the_highest_level_within_a_budget(watts: float) -> None:
    level = permille_for_draw(PARAMS, watts)
    if level > 0:
        assert draw_curve(PARAMS, True, level) <= watts
    if level < 1000:
        assert draw_curve(PARAMS, True, level + 1) > watts


def test_fades_ramp_linearly_to_their_target() -> None:
    clock = ManualClock()
    light = LightModel(PARAMS, clock)
    light.set_on(True)
    light.set_level(800, 3200, 2000)
    clock.advance(1.0)
    assert light.output_permille() == pytest.approx(400)
    assert light.cct_k() == pytest.approx((5600 + 3200) / 2, abs=1)
    assert light.fade_remaining_ms() == 1000
    clock.advance(1.5)
    assert light.output_permille() == 800 and light.fade_remaining_ms() == 0


def test_heat_folds_the_output_back_and_then_shuts_it_off() -> None:
    clock = ManualClock()
    light = LightModel(PARAMS, clock)
    light.set_on(True)
    light.set_level(1000, 5600, 0)
    clock.advance(3600.0)
    light.advance()
    # Full power settles at 22 + 0.45 x 100 = 67 C: no fold-back with good cooling.
    assert light.output_limit_permille() == 1000 and not light.faults
    light.cooling_factor = 2.0
    clock.advance(600.0)
    light.advance()
    assert light.faults & LightFault.THERMAL_FOLDBACK
    assert light.output_permille() < 1000
    assert EventCode.THERMAL_FOLDBACK in [e.code for e in light.events]
    light.cooling_factor = 12.0  # fan failed: even 30 % output would settle near 140 C
    hottest = 0.0
    off_seen = False
    for _ in range(360):  # an hour, watched every 10 s
        clock.advance(10.0)
        light.advance()
        hottest = max(hottest, light.temperature_c)
        if light.faults & LightFault.OVER_TEMPERATURE:
            off_seen = True
            assert light.output_permille() == 0
    # The cut-out holds it: off at 95 C, back on below 75 C, never much above the limit.
    assert off_seen and hottest < PARAMS.shutdown_c + 0.5
    assert EventCode.OVER_TEMPERATURE in [e.code for e in light.events]


class LightMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.light = LightModel(PARAMS, self.clock)

    @rule(seconds=st.floats(0, 1800))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.light.advance()

    @rule(level=st.integers(0, 1000), cct=st.integers(2700, 6500), fade=st.integers(0, 600_000))
    def set_level(self, level: int, cct: int, fade: int) -> None:
        self.light.set_level(level, cct, fade)

    @rule(on=st.booleans())
    def switch(self, on: bool) -> None:
        self.light.set_on(on)

    @rule(factor=st.sampled_from([1.0, 2.0, 8.0]))
    def cooling(self, factor: float) -> None:
        self.light.advance()
        self.light.cooling_factor = factor

    @rule(powered=st.booleans())
    def power(self, powered: bool) -> None:
        self.light.set_powered(powered)

    @rule()
    def reset(self) -> None:
        self.light.reset()

    @invariant()
    def output_within_its_limits(self) -> None:
        out = self.light.output_permille()
        assert 0 <= out <= self.light.output_limit_permille() <= 1000
        assert 2700 <= self.light.cct_k() <= 6500

    @invariant()
    def temperature_bounded(self) -> None:
        p = PARAMS
        hottest = p.ambient_c + p.thermal_resistance_c_per_w * 8.0 * p.inrush_w
        assert p.ambient_c - 1e-6 <= self.light.temperature_c <= hottest

    @invariant()
    def draw_matches_the_state(self) -> None:
        draw = self.light.draw_w()
        if not self.light.powered:
            assert draw == 0.0
        elif not self.light.on:
            assert draw == PARAMS.off_w
        else:
            assert PARAMS.standby_w <= draw <= max(PARAMS.max_w, PARAMS.inrush_w)


TestLightMachine = LightMachine.TestCase
