"""Redis failures: the hook answers 503 (never a 202 it cannot keep), sockets stay served."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from amber_relay.redis_server import RedisServer
from amber_relay.settings import Settings
from tests.conftest import running_system
from tests.support import Agency, Client, alert_doc, signed, square

SA = (29.42, -98.49)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A private Redis this test may kill and restart (AOF on, as in production)."""
    server = RedisServer(tmp_path / "redis", appendonly=True)
    server.start()
    yield server
    server.stop()


@pytest.mark.asyncio
async def test_redis_down_gives_503_and_recovers(
    own_redis: RedisServer, settings: Settings, agency: Agency
) -> None:
    """With Redis dead: 503 + Retry-After, open sockets stay up; once it is back, alerts
    accepted before the crash are still active and new ones are delivered."""
    local = settings.replace(redis_url=own_redis.url)
    async with running_system(local) as system:
        c = await Client.open(system.stream_url, lat=SA[0], lon=SA[1])
        r = await signed(
            system.http, "POST", "/v1/alerts", agency, alert_doc("TX-F1", polygon=square(*SA, 0.1))
        )
        assert r.status_code == 202
        assert (await c.next_of("interrupt"))["alert"]["id"] == "TX-F1"

        own_redis.kill()
        r = await signed(
            system.http, "POST", "/v1/alerts", agency, alert_doc("TX-F2", polygon=square(*SA, 0.1))
        )
        assert r.status_code == 503, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["retry-after"] == "5"
        assert r.json()["code"] == "store_unavailable"
        await c.ws.ping()  # the socket is still served while Redis is down

        own_redis.start()  # same port, same AOF: the accepted alert is still there
        late = await Client.open(system.stream_url, lat=SA[0], lon=SA[1])
        assert (await late.next_of("interrupt"))["alert"]["id"] == "TX-F1"
        r = await signed(
            system.http, "POST", "/v1/alerts", agency, alert_doc("TX-F3", polygon=square(*SA, 0.1))
        )
        assert r.status_code == 202, r.text
        for client in (c, late):
            assert (await client.next_of("interrupt", timeout_s=20))["alert"]["id"] == "TX-F3"
