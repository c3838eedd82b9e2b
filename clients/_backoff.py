"""Full-jitter exponential backoff for reconnecting clients.

Every client of a restarted broadcaster reconnects at once; drawing each delay
uniformly from ``[0, min(max, base * 2**attempt)]`` ("full jitter") spreads them over
the whole window instead of bunching them at its edge, which is what keeps a restart
from turning into a handshake storm.
"""

from __future__ import annotations

import random

__all__ = ["Backoff", "full_jitter"]

# 2**1024 overflows a float; past this exponent every ceiling is max_s anyway.
_MAX_EXPONENT = 62


def full_jitter(attempt: int, *, base_s: float, max_s: float, rng: random.Random) -> float:
    """Delay before retry number ``attempt`` (0 for the first retry), in seconds.

    Returns ``rng.uniform(0, min(max_s, base_s * 2**attempt))``.

    Raises:
        ValueError: ``attempt`` is negative.
    """
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, not {attempt}")
    ceiling = min(max_s, base_s * 2 ** min(attempt, _MAX_EXPONENT))
    return rng.uniform(0.0, ceiling)


class Backoff:
    """Counts consecutive failures and draws the next full-jitter delay.

    Args:
        base_s: ceiling of the first delay, in seconds (> 0).
        max_s: largest ceiling, in seconds (>= ``base_s``).
        rng: source of randomness; a seeded ``random.Random`` makes delays repeatable.

    Raises:
        ValueError: ``base_s`` is not positive or ``max_s`` is below it.
    """

    def __init__(self, base_s: float, max_s: float, rng: random.Random | None = None) -> None:
        if not base_s > 0:
            raise ValueError(f"backoff base must be > 0 s, not {base_s}")
        if not max_s >= base_s:
            raise ValueError(f"backoff max ({max_s} s) must be >= its base ({base_s} s)")
        self.base_s = base_s
        self.max_s = max_s
        self.attempt = 0
        self._rng = rng if rng is not None else random.Random()

    def next_delay(self) -> float:
        """The delay before the next attempt; each call widens the window (up to ``max_s``)."""
        delay = full_jitter(self.attempt, base_s=self.base_s, max_s=self.max_s, rng=self._rng)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """Start over from ``base_s`` (after a connection that worked)."""
        self.attempt = 0
