"""The one retry schedule: bounded, doubling, jitter within its fraction, reset when healthy."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_host.backoff import Backoff

firsts = st.floats(0.001, 10)
ratios = st.floats(1, 1000)
jitters = st.floats(0, 0.99)
draws = st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=40)


def schedule(backoff: Backoff, n: int) -> list[float]:
    return [backoff.next() for _ in range(n)]


@given(first=firsts, ratio=ratios, jitter=jitters, randoms=draws)
def test_every_delay_is_within_its_bounds_and_its_jitter(
    first: float, ratio: float, jitter: float, randoms: list[float]
) -> None:
    source = iter(randoms)
    backoff = Backoff(first, first * ratio, jitter=jitter, random_source=lambda: next(source))
    nominal = first
    for _ in randoms:
        delay = backoff.next()
        assert nominal * (1 - jitter) - 1e-12 <= delay <= nominal <= first * ratio
        nominal = min(nominal * 2, first * ratio)


@given(first=firsts, ratio=ratios, n=st.integers(1, 40))
def test_without_jitter_it_doubles_up_to_the_maximum(first: float, ratio: float, n: int) -> None:
    backoff = Backoff(first, first * ratio, random_source=lambda: 0.0)
    assert schedule(backoff, n) == [min(first * 2**k, first * ratio) for k in range(n)]


@given(first=firsts, ratio=ratios, failures=st.integers(1, 30))
def test_after_a_healthy_spell_it_starts_from_the_first_delay_again(
    first: float, ratio: float, failures: int
) -> None:
    backoff = Backoff(first, first * ratio, random_source=lambda: 0.0)
    schedule(backoff, failures)
    backoff.reset()
    assert backoff.next() == first


def test_jitter_spreads_retries_that_failed_together() -> None:
    constant = [Backoff(1, 8, random_source=lambda: 0.5).next() for _ in range(3)]
    assert constant == [0.875] * 3  # pinned source: reproducible

    spread = {Backoff(1, 8, random_source=random.Random(seed).random).next() for seed in range(20)}
    assert len(spread) > 1 and all(0.75 <= d <= 1 for d in spread)


@pytest.mark.parametrize(("first", "most", "jitter"), [(0, 1, 0.1), (2, 1, 0.1), (1, 2, 1.0)])
def test_a_nonsense_schedule_is_refused(first: float, most: float, jitter: float) -> None:
    with pytest.raises(ValueError):
        Backoff(first, most, jitter=jitter)
