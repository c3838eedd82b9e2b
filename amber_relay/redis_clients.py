"""The one place Redis clients are built from :class:`Settings`: direct or through Sentinel.

With ``redis_sentinels`` set, every client asks the Sentinels where the primary is on
each new connection, so after a failover the next command reaches the promoted replica
(a command in flight when the primary dies fails and the caller answers 503 or
retries). Without it, ``redis_url`` (or the URL of ``amber-relay run``'s private
server) is used as is. All clients time out, so a hung Redis fails fast.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel

from .errors import AmberError
from .settings import Settings

__all__ = ["follower", "primary", "sentinel_addresses"]

# A command (XREAD BLOCK included: it blocks 2 s) answers within this, or the
# connection is dropped and the caller retries or answers 503.
_SOCKET_TIMEOUT_S = 5.0
_CONNECT_TIMEOUT_S = 2.0
_HEALTH_CHECK_S = 10


def sentinel_addresses(settings: Settings) -> list[tuple[str, int]]:
    """The ``host:port`` pairs of ``redis_sentinels``.

    Raises:
        AmberError: an entry is not ``host:port`` (code ``bad_sentinels``).
    """
    out: list[tuple[str, int]] = []
    for item in (settings.redis_sentinels or "").split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise AmberError(
                f"AMBER_REDIS_SENTINELS entry {item!r} is not host:port", code="bad_sentinels"
            )
        out.append((host.strip("[]"), int(port)))
    return out


def _kwargs() -> dict[str, Any]:
    return {
        "socket_timeout": _SOCKET_TIMEOUT_S,
        "socket_connect_timeout": _CONNECT_TIMEOUT_S,
        "health_check_interval": _HEALTH_CHECK_S,
    }


def _sentinel(settings: Settings) -> Sentinel | None:
    addresses = sentinel_addresses(settings)
    if not addresses:
        return None
    return Sentinel(  # type: ignore[no-untyped-call]
        addresses,
        sentinel_kwargs={
            "socket_timeout": _CONNECT_TIMEOUT_S,
            "socket_connect_timeout": _CONNECT_TIMEOUT_S,
        },
        **_kwargs(),
    )


def _need_url(url: str | None) -> str:
    if url is None:
        raise AmberError(
            "no Redis configured: set AMBER_REDIS_URL or AMBER_REDIS_SENTINELS",
            code="no_redis_url",
        )
    return url


def primary(settings: Settings, url: str | None, *, redis_class: type[Redis] = Redis) -> Redis:
    """A client of the primary: through the Sentinels if configured, else ``url``.

    Raises:
        AmberError: neither Sentinels nor a URL is configured, or the Sentinel list
            does not parse.
    """
    sentinel = _sentinel(settings)
    if sentinel is not None:
        client: Redis = sentinel.master_for(
            settings.redis_sentinel_master, redis_class=redis_class, **_kwargs()
        )
        return client
    direct: Redis = redis_class.from_url(_need_url(url), **_kwargs())
    return direct


def follower(settings: Settings, url: str | None) -> Redis:
    """The client broadcasters read the events stream with.

    A replica (round-robin over those Sentinel knows, falling back to the primary when
    none answers) if ``redis_follow_replica`` and Sentinels are set; else the primary.
    """
    sentinel = _sentinel(settings)
    if sentinel is not None and settings.redis_follow_replica:
        client: Redis = sentinel.slave_for(settings.redis_sentinel_master, **_kwargs())
        return client
    return primary(settings, url)
