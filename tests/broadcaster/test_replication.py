"""AMBER_REDIS_MIN_REPLICAS: 202 only once a replica acknowledged the write (Redis WAIT)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from amber_relay.redis_server import RedisServer
from amber_relay.settings import Settings
from tests.broadcaster.test_lifecycle import CAP, SA_POLYGON, cap_message, cap_time
from tests.conftest import running_system
from tests.support import Agency, Client, alert_doc, seconds, signed, square

SA = (29.42, -98.49)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A private primary this test attaches a replica to."""
    # No 5 s wait for more replicas before the first full sync.
    server = RedisServer(
        tmp_path / "primary", appendonly=False, extra_args=["--repl-diskless-sync-delay", "0"]
    )
    server.start()
    yield server
    server.stop()


def start_replica(tmp_path: Path, primary: RedisServer) -> RedisServer:
    """A started replica of ``primary`` (no AOF), syncing without the diskless delay."""
    replica = RedisServer(
        tmp_path / "replica",
        appendonly=False,
        extra_args=[
            "--replicaof",
            "127.0.0.1",
            str(primary.port),
            "--repl-diskless-sync-delay",
            "0",
        ],
    )
    replica.start()
    return replica


async def wait_replica_online(primary_url: str) -> None:
    """Until the primary lists one replica online that acknowledges writes (bounded)."""
    client = Redis.from_url(primary_url)
    try:
        async with asyncio.timeout(seconds(20)):
            while True:
                info = await client.info("replication")
                slave = info.get("slave0")
                if isinstance(slave, dict) and slave.get("state") == "online":
                    break
                await asyncio.sleep(0.05)
            # Online, and acknowledging: a write of ours reaches it (bounded by the timeout).
            async with client.pipeline(transaction=False) as pipe:
                pipe.incr("test:replica-probe")
                pipe.wait(1, int(seconds(10) * 1000))
                _, acked = await pipe.execute()
            assert int(acked) == 1
    finally:
        await client.aclose()


@pytest.mark.asyncio
async def test_unreplicated_write_is_503_and_the_idempotent_retry_is_202(
    own_redis: RedisServer, settings: Settings, agency: Agency, tmp_path: Path
) -> None:
    """No replica: 503 store_not_replicated with Retry-After; with one: the retry gets 202."""
    local = settings.replace(
        redis_url=own_redis.url, redis_min_replicas=1, redis_wait_timeout_s=seconds(1)
    )
    doc = alert_doc("TX-W1", polygon=square(*SA, 0.1))
    async with running_system(local) as system:
        c = await Client.open(system.stream_url, lat=SA[0], lon=SA[1])
        r = await signed(system.http, "POST", "/v1/alerts", agency, doc)
        assert r.status_code == 503, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "store_not_replicated"
        assert r.headers["retry-after"] == "1"

        replica = start_replica(tmp_path, own_redis)
        try:
            await wait_replica_online(own_redis.url)
            # The retry: the same alert with a fresh signature (a later t).
            r = await signed(system.http, "POST", "/v1/alerts", agency, doc, t=int(time.time()) + 1)
            assert r.status_code == 202, r.text
            assert r.headers["amber-idempotent-replay"] == "true"
            # Whether or not the 503'd write was applied meanwhile, it is shown once.
            assert (await c.next_of("interrupt"))["alert"]["id"] == "txdps/TX-W1"
            await system.sentinel(agency, [c], "TX-W-AFTER")
        finally:
            replica.stop()


@pytest.mark.asyncio
async def test_replicated_write_is_202_at_once(
    own_redis: RedisServer, settings: Settings, agency: Agency, tmp_path: Path
) -> None:
    """With a replica online, a new alert is answered 202 and delivered."""
    replica = start_replica(tmp_path, own_redis)
    try:
        await wait_replica_online(own_redis.url)
        local = settings.replace(redis_url=own_redis.url, redis_min_replicas=1)
        async with running_system(local) as system:
            c = await Client.open(system.stream_url, lat=SA[0], lon=SA[1])
            body = await system.post(agency, alert_doc("TX-W2", polygon=square(*SA, 0.1)))
            assert body["status"] == "accepted"
            assert (await c.next_of("interrupt"))["alert"]["id"] == "txdps/TX-W2"
    finally:
        replica.stop()


@pytest.mark.asyncio
async def test_cap_message_link_is_written_before_the_wait(
    own_redis: RedisServer, settings: Settings, agency: Agency, tmp_path: Path
) -> None:
    """A CAP message's link to its alert is written before the WAIT of its 202, so a
    replica acknowledging that WAIT holds it (an Update after a failover finds it)."""
    replica = start_replica(tmp_path, own_redis)
    watcher = Redis.from_url(own_redis.url, decode_responses=True)
    seen: list[str] = []
    try:
        await wait_replica_online(own_redis.url)
        local = settings.replace(redis_url=own_redis.url, redis_min_replicas=1)
        async with running_system(local) as system, watcher.monitor() as monitor:
            waited = asyncio.Event()

            async def watch() -> None:
                while True:
                    seen.append((await monitor.next_command())["command"])
                    if seen[-1].startswith("WAIT"):
                        waited.set()

            watching = asyncio.create_task(watch())
            try:
                msg = cap_message("Alert", "CAP-W", cap_time(0), SA_POLYGON)
                assert (await system.post(agency, msg, CAP))["version"] == 1
                link = f"{local.redis_prefix}cap:{agency.id}/amber@dps.example,CAP-W"
                async with asyncio.timeout(seconds(10)):
                    await waited.wait()
            finally:
                watching.cancel()
        waits = [i for i, c in enumerate(seen) if c.startswith("WAIT")]
        links = [i for i, c in enumerate(seen) if link in c]
        assert links and waits and links[0] < waits[0], seen
    finally:
        await watcher.aclose()
        replica.stop()
