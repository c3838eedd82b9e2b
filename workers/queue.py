"""The Redis connection every process uses, and queueing an apply job on it."""

from __future__ import annotations

from arq.connections import ArqRedis, RedisSettings, create_pool

from amber_relay.settings import Settings

from . import _serial

__all__ = ["connect", "enqueue_apply"]


async def connect(settings: Settings, url: str) -> ArqRedis:
    """An arq-capable Redis pool on ``url``, with timeouts so a dead Redis fails fast.

    Raises:
        redis.RedisError or OSError: Redis unreachable after arq's retries.
    """
    rs = RedisSettings.from_dsn(url)
    rs.conn_timeout = 2
    rs.conn_retries = 3
    rs.conn_retry_delay = 1
    return await create_pool(
        rs,
        job_serializer=_serial.serialize,
        job_deserializer=_serial.deserialize,
        default_queue_name=settings.redis_prefix + "queue",
    )


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
