"""The Redis connection every process uses, and queueing an apply job on it."""

from __future__ import annotations

import asyncio
from typing import cast

from arq.connections import ArqRedis
from redis.exceptions import RedisError

from amber_relay.redis_clients import primary
from amber_relay.settings import Settings

from . import _serial

__all__ = ["connect", "enqueue_apply"]

_CONNECT_TRIES = 4


async def connect(settings: Settings, url: str | None) -> ArqRedis:
    """An arq-capable Redis pool on the primary (``url``, or through the Sentinels).

    Built by :func:`amber_relay.redis_clients.primary`, so it times out like every
    other client and follows a Sentinel failover on its next connection.

    Raises:
        redis.RedisError or OSError: Redis unreachable after ``_CONNECT_TRIES`` PINGs
            one second apart.
    """
    for attempt in range(_CONNECT_TRIES):
        pool = cast(ArqRedis, primary(settings, url, redis_class=ArqRedis))
        pool.job_serializer = _serial.serialize
        pool.job_deserializer = _serial.deserialize
        pool.default_queue_name = settings.redis_prefix + "queue"
        try:
            await pool.ping()
            return pool
        except (RedisError, OSError):
            await pool.aclose()
            if attempt == _CONNECT_TRIES - 1:
                raise
        except BaseException:
            await pool.aclose()
            raise
        await asyncio.sleep(1)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


async def enqueue_apply(redis: ArqRedis, queue: str, alert_id: str, version: int) -> None:
    """Queue the job applying one version; a job already queued for it is kept as is.

    Raises:
        redis.RedisError or OSError: the job could not be queued.
    """
    await redis.enqueue_job(
        "apply",
        alert_id,
        version,
        # arq's job keys are global (arq:job:<id>), so the id carries the queue name:
        # deployments sharing a Redis must not mistake each other's jobs for their own.
        _job_id=f"{queue}:apply:{alert_id}:{version}",
        _queue_name=queue,
    )
