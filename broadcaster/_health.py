"""The serving process's health, in one small object the API and metrics read.

The feed writes it (synced, caught up with the stream, bad entries skipped), the
supervisor counts task restarts, shutdown sets ``draining``. Nothing here does I/O:
``/readyz`` adds the Redis ping.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

__all__ = ["FeedState", "Health"]


@dataclass
class FeedState:
    """Where the feed (store -> hub) stands; monotonic times, ``None`` = never."""

    synced: bool = False
    """The hub holds a snapshot of the active set and the feed is following."""
    caught_up_at: float | None = None
    """Last time a read of the stream reached its head (``time.monotonic()``)."""
    last_entry_id: str = "0-0"
    """Id of the last entry applied or skipped."""
    bad_entries: int = 0
    """Entries skipped as undecodable, of an unknown type or missing fields."""
    resyncs: int = 0
    """Snapshots taken after the first (Redis failures, bad entries)."""

    def caught_up(self) -> None:
        self.caught_up_at = time.monotonic()

    def lag_s(self, now: float | None = None) -> float | None:
        """Seconds since the feed last reached the stream's head; None before the first."""
        if self.caught_up_at is None:
            return None
        return (time.monotonic() if now is None else now) - self.caught_up_at


@dataclass
class Health:
    """Everything ``/readyz`` (and metrics) need to know about this process."""

    feed: FeedState = field(default_factory=FeedState)
    draining: bool = False
    """SIGTERM received: the stream no longer accepts and sockets are being closed."""
    task_restarts: dict[str, int] = field(default_factory=dict)
    """Background task name -> times it died and was restarted."""

    def not_ready(self, max_lag_s: float) -> str | None:
        """A short reason this process should get no new traffic, or None.

        Redis reachability is checked by the caller (it needs I/O).
        """
        if self.draining:
            return "draining"
        if not self.feed.synced:
            return "feed not synced"
        lag = self.feed.lag_s()
        if lag is None or lag > max_lag_s:
            return f"feed behind the events stream ({lag or 0:.0f} s)"
        return None
