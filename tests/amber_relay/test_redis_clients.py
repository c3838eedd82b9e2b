"""Redis clients from Settings: the Sentinel list parses or fails with a precise error."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from amber_relay.errors import AmberError
from amber_relay.redis_clients import follower, primary, sentinel_addresses
from amber_relay.settings import Settings


def test_sentinel_list_parses_host_port_pairs() -> None:
    """Comma-separated host:port, spaces and an IPv6 host in brackets allowed."""
    s = Settings(redis_sentinels=" s1:26379, 10.0.0.2:26380 ,[::1]:26381")
    assert sentinel_addresses(s) == [("s1", 26379), ("10.0.0.2", 26380), ("::1", 26381)]
    assert sentinel_addresses(Settings()) == []


@pytest.mark.parametrize("bad", ["s1", "s1:", ":26379", "s1:port"])
def test_bad_sentinel_entry_names_itself(bad: str) -> None:
    """An entry that is not host:port stops the process with code bad_sentinels."""
    with pytest.raises(AmberError) as info:
        sentinel_addresses(Settings(redis_sentinels=bad))
    assert info.value.code == "bad_sentinels"


def test_no_redis_configured_is_an_error() -> None:
    """Neither a URL nor Sentinels: a precise error, not a client on localhost."""
    with pytest.raises(AmberError) as info:
        primary(Settings(), None)
    assert info.value.code == "no_redis_url"


@pytest.mark.asyncio
async def test_follower_is_the_primary_without_sentinels() -> None:
    """Without Sentinels the stream is read from the URL given (no replica to follow)."""
    client = follower(Settings(redis_follow_replica=True), "redis://127.0.0.1:1/0")
    try:
        assert isinstance(client, Redis)
        assert client.connection_pool.connection_kwargs["port"] == 1
    finally:
        await client.aclose()
