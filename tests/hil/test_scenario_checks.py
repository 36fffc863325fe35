"""The draw checks judge both sides: over the cap less reserve, and shed more than needed."""

from __future__ import annotations

from tools.scenario.checks import Recording, device_draw, draw_between
from tools.scenario.spec import Expect


def recording(watts: list[float], key_w: float = 55.0) -> Recording:
    samples = [(100.0 + i * 0.1, w) for i, w in enumerate(watts)]
    return Recording(
        started=100.0, speed=1.0, initial_cap_w=120.0, reserve_pct=10.0, frame_rate=25.0,
        events=[], gaps=[], duplicates=0, steps=[], draw=samples,
        device_draw=[(ts, {"key": key_w}) for ts, _ in samples],
    )  # fmt: skip


BAND = Expect(check="draw_between", step_w=7.2)


def test_a_draw_within_one_step_under_the_cap_less_reserve_passes() -> None:
    assert draw_between(recording([105.2, 101.0, 108.0]), BAND)[0]


def test_shedding_more_than_one_step_fails() -> None:
    passed, detail = draw_between(recording([105.2, 48.2]), BAND)
    assert not passed and "shed more than needed: 48.2 W, 59.8 W under" in detail


def test_a_draw_above_the_cap_less_reserve_fails() -> None:
    assert not draw_between(recording([108.5]), BAND)[0]


def test_a_dark_key_light_fails() -> None:
    lit = Expect(check="device_draw", device="key", at_least=10)
    assert device_draw(recording([105.0]), lit)[0]
    passed, detail = device_draw(recording([50.0], key_w=0.5), lit)
    assert not passed and detail == "key drew 0.5-0.5 W over 1 samples"
