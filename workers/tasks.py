"""The worker's jobs: apply a submitted version, expire what is due.

Jobs are idempotent: applying a version at or below the applied one changes nothing,
and expiring checks the expiry again atomically, so arq's at-least-once execution
(a job re-run after a worker died mid-way) never broadcasts twice.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import msgspec
from arq import Retry
from redis.exceptions import RedisError

from amber_relay import metrics
from amber_relay.logs import alert_context
from amber_relay.store import Store, Submission

from .photos import PhotoFetcher

__all__ = ["apply", "expire_due"]

log = logging.getLogger("amber_relay.worker")


async def apply(
    ctx: dict[str, Any], alert_id: str, version: int, sub: Submission | None = None
) -> str:
    """Apply version ``version`` of ``alert_id`` (see :func:`_apply`); every line it
    logs names the alert version."""
    with alert_context(alert_id, version):
        return await _apply(ctx, alert_id, version, sub)


async def _apply(
    ctx: dict[str, Any], alert_id: str, version: int, stored: Submission | None = None
) -> str:
    """Apply version ``version`` of ``alert_id``: publish it, or clear a cancelled alert.

    ``stored`` is that version's submission when the caller holds it (the serving
    process's fast path, which has just stored it): decoding it again from Redis cost
    that process's event loop ~40 ms for a whole state's area.

    Returns a short outcome for arq's result log. Raises ``arq.Retry`` when Redis is
    unreachable, so the job runs again.
    """
    store: Store = ctx["store"]
    fetcher: PhotoFetcher = ctx["photos"]
    if int(ctx.get("job_try", 1)) > 1:
        metrics.JOB_RETRIES.inc()
    try:
        # The serving process usually applied it already (its fast path): stop here
        # rather than load the submission and process its photos a second time.
        if int((await store.meta(alert_id)).get("applied", "0")) >= version:
            return "superseded"
        sub = stored if stored is not None else await store.load_submission(alert_id, version)
        if sub is None:
            log.error("apply %s v%d: no such submission", alert_id, version)
            return "missing"
        if sub.kind == "cancel":
            done = await store.apply(
                alert_id, version, record=None, reason="cancelled", public=True, state="cancelled"
            )
            if done:
                _observe(ctx, sub.received_ts)
            return "cancelled" if done else "superseded"
        if sub.record is None:
            return "missing"
        record = sub.record
        content = msgspec.structs.replace(record.content, version=version)
        if record.pending_photos:
            photos = await fetcher.resolve(record.pending_photos)
            content = msgspec.structs.replace(content, photos=photos)
        record = msgspec.structs.replace(
            record, version=version, content=content, pending_photos=[]
        )
        public = record.status == "actual" and sub.public
        if record.status != "actual":
            state = f"stored ({record.status}, not public)"
        elif not sub.public:
            state = "stored (outside the pilot states, not public)"
        else:
            state = "active"
        done = await store.apply(
            alert_id, version, record=record, reason=None, public=public, state=state
        )
        if done:
            _observe(ctx, sub.received_ts)
        return ("published" if public else "stored") if done else "superseded"
    except (RedisError, OSError) as exc:
        metrics.REDIS_ERRORS.labels("worker").inc()
        log.warning("apply %s v%d: redis unavailable (%r); retrying", alert_id, version, exc)
        raise Retry(defer=1) from exc


def _observe(ctx: dict[str, Any], received_ts: float) -> None:
    # arq puts job_try in the context of its jobs; the serving process's fast path does not.
    runner = "worker" if "job_try" in ctx else "server"
    metrics.JOB_LATENCY.labels(runner).observe(max(0.0, time.time() - received_ts))


async def expire_due(ctx: dict[str, Any]) -> int:
    """Expire the alerts whose time has come and forget end markers past retention.

    Returns how many alerts expired.
    """
    store: Store = ctx["store"]
    now = time.time()
    n = 0
    for alert_id in await store.due(now):
        if await store.expire(alert_id, now):
            log.info("expired %s", alert_id, extra={"alert_id": alert_id, "version": None})
            n += 1
    # End markers older than retention go too (the alert's keys expire by TTL).
    await store.sweep_ended(now)
    return n
