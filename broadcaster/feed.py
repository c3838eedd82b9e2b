"""Keep the hub in step with the store: snapshot, then follow the events stream.

On start and after any Redis failure the hub is re-synced from the active set (so a
trimmed or lost stream loses nothing); meanwhile sockets stay open and served from
the hub's last state.
"""

from __future__ import annotations

import asyncio
import logging
import random

from redis.exceptions import RedisError

from amber_relay.store import Store

from .hub import Hub

__all__ = ["follow", "flush_stats"]

log = logging.getLogger("amber_relay.feed")

_BLOCK_MS = 2000
_BACKOFF_MAX_S = 5.0


async def follow(store: Store, hub: Hub, synced: asyncio.Event) -> None:
    """Run until cancelled; sets ``synced`` after the first snapshot is applied."""
    failures = 0
    while True:
        try:
            last = await store.last_event_id()
            hub.sync(await store.active(), await store.ended())
            synced.set()
            if failures:
                log.info("events stream: resynced after %d failure(s)", failures)
            failures = 0
            while True:
                for entry_id, event in await store.read_events(last, block_ms=_BLOCK_MS):
                    last = entry_id
                    try:
                        hub.apply(event)
                    except Exception:
                        # A bug on one event must not stop this process from following
                        # the stream (and everyone else's alerts).
                        log.exception(
                            "events stream: failed to apply %s v%d", event.id, event.version
                        )
        except (RedisError, OSError) as exc:
            failures += 1
            delay = random.uniform(0, min(_BACKOFF_MAX_S, 0.1 * 2**failures))
            log.warning("events stream: %r; retrying in %.2f s", exc, delay)
            await asyncio.sleep(delay)


async def flush_stats(store: Store, hub: Hub, interval_s: float) -> None:
    """Every ``interval_s``, add the hub's counters to Redis; kept for the next try on failure."""
    while True:
        await asyncio.sleep(interval_s)
        stats = hub.take_stats()
        if not stats:
            continue
        try:
            await store.add_stats(dict(stats))
        except (RedisError, OSError) as exc:
            log.warning("stats flush failed (%r); keeping %d counters", exc, len(stats))
            hub.stats.update(stats)
