"""Keep the hub in step with the store: snapshot, then follow the events stream.

On start and after any Redis failure the hub is re-synced from the active set (so a
trimmed or lost stream loses nothing); meanwhile sockets stay open and served from
the hub's last state. An entry this process cannot use (undecodable, an unknown kind
from a newer writer, missing fields) is logged once with its id and skipped, and the
hub is re-synced from the active set, which holds whatever that entry meant to say.
Where the feed stands is kept in a :class:`FeedState` (``/readyz``, metrics).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

import msgspec
from redis.exceptions import RedisError

from amber_relay import ingest, metrics
from amber_relay.logs import alert_context
from amber_relay.model import AlertRecord
from amber_relay.store import BadEntry, Event, Store

from ._health import FeedState
from .hub import Hub, Prepared

__all__ = ["follow", "flush_stats"]

log = logging.getLogger("amber_relay.feed")

_BLOCK_MS = 2000
_COUNT = 100
_BACKOFF_MAX_S = 5.0


class _Resync(Exception):
    """The stream said something this process did not understand: snapshot again."""


async def follow(
    store: Store,
    hub: Hub,
    synced: asyncio.Event,
    state: FeedState | None = None,
    *,
    resync_s: float = 600.0,
) -> None:
    """Run until cancelled; sets ``synced`` after the first snapshot is applied.

    Redis failures are retried with backoff forever; other errors propagate (the
    caller supervises this task and restarts it). ``state`` is updated as it goes.
    Every ``resync_s`` the hub is re-synced from the active set anyway, which heals
    any divergence nothing detected and drops end markers the store has swept.
    """
    state = FeedState() if state is None else state
    failures = 0
    while True:
        state.synced = False
        try:
            last = await store.last_event_id()
            active = {k: await _completed(r, hub) for k, r in (await store.active()).items()}
            ended = await store.ended()
            built = {k: p for k, r in active.items() if (p := await _prepared(hub, r)) is not None}
            hub.sync(active, ended, built)
            if synced.is_set():
                state.resyncs += 1
            state.synced = True
            state.caught_up()
            synced.set()
            if failures:
                log.info("events stream: resynced after %d failure(s)", failures)
            failures = 0
            resync_at = time.monotonic() + resync_s
            while True:
                if time.monotonic() >= resync_at:
                    log.info("events stream: periodic resync from the active set")
                    break
                batch = await store.read_events(last, block_ms=_BLOCK_MS, count=_COUNT)
                # Lag per batch: the age of the newest entry read (0 when caught up).
                metrics.EVENT_LAG.set(_age_s(batch[-1][0]) if batch else 0.0)
                bad = False
                for entry_id, event in batch:
                    last = state.last_entry_id = entry_id
                    if isinstance(event, BadEntry):
                        state.bad_entries += 1
                        bad = True
                        log.error("events stream: skipping entry %s: %s", entry_id, event.reason)
                        continue
                    prepared = None
                    if event.record is not None:
                        record = event.record
                        if record.regions is None:
                            record = await _completed(record, hub)
                            event = msgspec.structs.replace(event, record=record)
                        # The events after this one wait: versions stay in stream order.
                        prepared = await _prepared(hub, record)
                    _apply(hub, event, entry_id, prepared)
                if len(batch) < _COUNT:
                    state.caught_up()
                if bad:
                    raise _Resync
        except _Resync:
            log.warning("events stream: resyncing from the active set after a bad entry")
        except (RedisError, OSError) as exc:
            metrics.REDIS_ERRORS.labels("feed").inc()
            state.synced = False
            failures += 1
            delay = random.uniform(0, min(_BACKOFF_MAX_S, 0.1 * 2**failures))
            log.warning("events stream: %r; retrying in %.2f s", exc, delay)
            await asyncio.sleep(delay)
        except BaseException:
            state.synced = False
            raise


async def _completed(record: AlertRecord, hub: Hub) -> AlertRecord:
    # Records stored before they carried their counties (an upgrade with alerts
    # active): add them off the loop, once, as ingest does now for every record.
    if record.regions is not None:
        return record
    return await asyncio.to_thread(ingest.complete, record, hub.geodata)


async def _prepared(hub: Hub, record: AlertRecord) -> Prepared | None:
    """The area and cell classes of ``record`` built in a thread; None if already applied.

    Tens of ms of shapely and numpy for a large area, which the sockets' loop would
    otherwise stall for: in a thread it yields the GIL every switch interval. Only the
    snapshot of the occupied cells is taken on the loop. Nothing else applies events
    to the hub meanwhile (this task is its only writer), so it changes as one step
    when the caller publishes the result; until then sockets are served the version
    before. Cancellation leaves the thread to finish and its result unused; an error
    in the thread gives None (publish then builds it and logs the failure).
    """
    if not hub.newer(record):
        return None
    occupied = list(hub.index.cells)
    try:
        return await asyncio.to_thread(hub.prepare, record, occupied)
    except Exception:
        # Publishing builds it again on the loop and logs what fails, as it always did.
        return None


def _apply(hub: Hub, event: Event, entry_id: str, prepared: Prepared | None = None) -> None:
    with alert_context(event.id, event.version):
        try:
            if event.kind == "publish":
                started = time.perf_counter()
                hub.apply(event, prepared)
                took = time.perf_counter() - started
                metrics.FANOUT_SECONDS.observe(took)
                log.info("published %s v%d in %.4f s", event.id, event.version, took)
            else:
                hub.apply(event)
                log.info("cleared %s v%d (%s)", event.id, event.version, event.reason)
        except Exception:
            # A bug on one event must not stop this process from following the stream
            # (and everyone else's alerts).
            log.exception(
                "events stream: failed to apply %s v%d (entry %s)",
                event.id,
                event.version,
                entry_id,
            )


def _age_s(entry_id: str) -> float:
    """Seconds since a stream entry was added (its id starts with Redis's ms clock)."""
    ms = entry_id.partition("-")[0]
    return max(0.0, time.time() - int(ms) / 1000) if ms.isdigit() else 0.0


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
            metrics.REDIS_ERRORS.labels("stats").inc()
            log.warning("stats flush failed (%r); keeping %d counters", exc, len(stats))
            hub.stats.update(stats)
