"""Build the arq worker: functions, cron, serializer, context."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

from arq import cron, func
from arq.connections import ArqRedis
from arq.worker import Worker
from redis.exceptions import RedisError

from amber_relay import metrics
from amber_relay.settings import Settings
from amber_relay.store import Store

from . import _serial
from .photos import PhotoFetcher
from .queue import connect
from .tasks import apply, expire_due

__all__ = ["create_worker", "run_worker"]

log = logging.getLogger("amber_relay.worker")


def create_worker(
    settings: Settings, redis: ArqRedis, *, handle_signals: bool = True, burst: bool = False
) -> Worker:
    """An arq worker on ``redis`` consuming the deployment's queue.

    The queue is polled every ``worker_poll_delay_s`` (50 ms by default; arq's 0.5 s
    would cost ~230 ms p50). Serving processes apply new versions themselves as soon
    as they are queued, so the poll only delays alerts with photo URLs and versions a
    crashed server left unapplied.
    """
    store = Store(
        redis,
        settings.redis_prefix,
        retention_s=settings.retention_s,
        stream_maxlen=settings.stream_maxlen,
    )
    ctx: dict[str, Any] = {"store": store, "photos": PhotoFetcher(store, settings)}
    step = max(1, settings.expire_interval_s)
    return Worker(
        functions=[func(apply, name="apply", timeout=settings.worker_job_timeout_s)],
        # arq keeps a job "in progress" for the longest timeout of any function (cron
        # jobs included, 300 s by default) + 10 s: that is how long a job cut short by
        # a killed worker waits before it runs again. Bound it by our own timeout.
        job_timeout=settings.worker_job_timeout_s,
        cron_jobs=[
            cron(expire_due, name="expire_due", second=set(range(0, 60, step)), microsecond=0)
        ],
        queue_name=store.keys.queue,
        redis_pool=redis,
        burst=burst,
        handle_signals=handle_signals,
        poll_delay=settings.worker_poll_delay_s,
        max_tries=20,
        # Results only serve arq's de-duplication of a re-queued job: never keep them
        # longer than the alert data itself (a tiny retention_s bounds them too).
        keep_result=max(1, min(3600, settings.retention_s)),
        ctx=ctx,
        job_serializer=_serial.serialize,
        job_deserializer=_serial.deserialize,
        health_check_key=settings.redis_prefix + "worker:health",
    )


async def run_worker(settings: Settings, redis_url: str | None) -> None:
    """Run a worker until cancelled, starting it again after any Redis failure.

    arq's own loop ends on a lost Redis connection; an alerting worker must not stay
    down after a Redis restart, so it is rebuilt with full-jitter backoff (cap 5 s).
    Cancellation stops it; a job cut short is re-run by arq once its lock expires.
    """
    failures = 0
    while True:
        try:
            redis = await connect(settings, redis_url)
        except (RedisError, OSError) as exc:
            failures += 1
            delay = random.uniform(0, min(5.0, 0.1 * 2**failures))
            metrics.REDIS_ERRORS.labels("worker").inc()
            log.warning("worker: redis unavailable (%r); retrying in %.2f s", exc, delay)
            await asyncio.sleep(delay)
            continue
        worker = create_worker(settings, redis, handle_signals=False)
        try:
            await worker.async_run()
            return
        except (RedisError, OSError) as exc:
            failures += 1
            delay = random.uniform(0, min(5.0, 0.1 * 2**failures))
            metrics.REDIS_ERRORS.labels("worker").inc()
            log.warning("worker: lost redis (%r); restarting in %.2f s", exc, delay)
            await asyncio.sleep(delay)
        finally:
            await _stop_jobs(worker)
            await redis.aclose()


async def _stop_jobs(worker: Worker, timeout_s: float = 5.0) -> None:
    """Cancel the job runs arq leaves behind when its main task is cancelled.

    arq runs each job in a task of its own that outlives ``async_run``: left running,
    it would use the pool after it is closed (and leak the connection it opens). A
    cancelled run re-queues its job (arq's retry); waiting is bounded by ``timeout_s``.
    """
    running = [t for t in (*worker.tasks.values(), *worker.job_tasks.values()) if not t.done()]
    for task in running:
        task.cancel()
    if running:
        await asyncio.wait(running, timeout=timeout_s)
