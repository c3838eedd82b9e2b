"""Full-jitter backoff: the window doubles up to its cap, every draw lies inside it."""

from __future__ import annotations

import random

import pytest

from clients._backoff import Backoff, full_jitter


def test_backoff_draws_stay_within_the_doubling_window() -> None:
    """Retry n draws from [0, min(max, base * 2**n)]; the window widens to its cap."""
    rng = random.Random(1234)
    base, cap = 0.5, 30.0
    for attempt in range(12):
        ceiling = min(cap, base * 2**attempt)
        draws = [full_jitter(attempt, base_s=base, max_s=cap, rng=rng) for _ in range(500)]
        assert all(0.0 <= d <= ceiling for d in draws), attempt
        # full jitter spreads over the whole window, not just near its edge
        assert min(draws) < 0.1 * ceiling
        assert max(draws) > 0.9 * ceiling


def test_backoff_is_repeatable_with_a_seeded_rng() -> None:
    """The same seed gives the same delays (what makes the bounds testable at all)."""
    a = Backoff(0.5, 30.0, random.Random(7))
    b = Backoff(0.5, 30.0, random.Random(7))
    assert [a.next_delay() for _ in range(20)] == [b.next_delay() for _ in range(20)]


def test_backoff_reset_starts_again_from_base() -> None:
    """After reset the next delay is drawn from [0, base] again, whatever came before."""
    backoff = Backoff(0.5, 30.0, random.Random(99))
    for _ in range(10):
        backoff.next_delay()
    assert backoff.attempt == 10
    for _ in range(200):
        backoff.reset()
        assert 0.0 <= backoff.next_delay() <= 0.5
    assert backoff.attempt == 1


def test_backoff_survives_a_very_long_outage() -> None:
    """Thousands of failures never overflow; the delay stays capped at max."""
    backoff = Backoff(0.5, 30.0, random.Random(3))
    for _ in range(5000):
        assert 0.0 <= backoff.next_delay() <= 30.0


def test_backoff_rejects_bad_settings() -> None:
    """A non-positive base, a cap below the base and a negative attempt are errors."""
    with pytest.raises(ValueError):
        Backoff(0.0, 30.0)
    with pytest.raises(ValueError):
        Backoff(5.0, 1.0)
    with pytest.raises(ValueError):
        full_jitter(-1, base_s=0.5, max_s=30.0, rng=random.Random(0))
