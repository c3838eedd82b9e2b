"""Redis failures: the hook answers 503 (never a 202 it cannot keep), sockets stay served."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from amber_relay.redis_server import RedisServer
from amber_relay.settings import Settings
from tests.conftest import running_system
from tests.support import Agency, Client, alert_doc, seconds, signed, square

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
        assert (await c.next_of("interrupt"))["alert"]["id"] == "txdps/TX-F1"
        # appendfsync everysec: Redis may postpone the AOF write while an fsync is slow
        # (a loaded disk), and a SIGKILL then loses the last writes. Kill it once the
        # AOF buffer is written out, which is what this test is about.
        probe: Redis = Redis.from_url(own_redis.url)
        try:
            async with asyncio.timeout(seconds(10)):
                while True:
                    info = await probe.info("persistence")
                    if int(info.get("aof_buffer_length", 0)) == 0:
                        break
                    await asyncio.sleep(0.05)
        finally:
            await probe.aclose()

        own_redis.kill()
        r = await signed(
            system.http, "POST", "/v1/alerts", agency, alert_doc("TX-F2", polygon=square(*SA, 0.1))
        )
        assert r.status_code == 503, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["retry-after"] == "5"
        assert r.json()["code"] == "store_unavailable"
        # The answer names no internal address: not Redis's port, nor its error text.
        assert str(own_redis.port) not in r.text and "Error" not in r.text, r.text
        await c.ws.ping()  # the socket is still served while Redis is down

        own_redis.start()  # same port, same AOF: the accepted alert is still there
        back = time.monotonic()
        late = await Client.open(system.stream_url, lat=SA[0], lon=SA[1])
        assert (await late.next_of("interrupt"))["alert"]["id"] == "txdps/TX-F1"
        r = await signed(
            system.http, "POST", "/v1/alerts", agency, alert_doc("TX-F3", polygon=square(*SA, 0.1))
        )
        assert r.status_code == 202, r.text
        for client in (c, late):
            assert (await client.next_of("interrupt", timeout_s=20))["alert"]["id"] == "txdps/TX-F3"
        print(
            f"\n[measure] redis restarted with AOF: new alert delivered to the old socket "
            f"{time.monotonic() - back:.2f} s after redis was back"
        )


@pytest.mark.asyncio
async def test_redis_restarted_without_aof_loses_alerts_and_says_so(
    tmp_path: Path, settings: Settings, agency: Agency
) -> None:
    """Redis restarted empty (no AOF): broadcasters resync to the empty active set, so
    clients get clear for the lost alert; the agency's status says unknown (404); new
    alerts flow again once Redis is back."""
    bare = RedisServer(tmp_path / "bare", appendonly=False)
    bare.start()
    try:
        async with running_system(settings.replace(redis_url=bare.url)) as system:
            c = await Client.open(system.stream_url, lat=SA[0], lon=SA[1])
            await system.post(agency, alert_doc("TX-N1", polygon=square(*SA, 0.1)))
            assert (await c.next_of("interrupt"))["alert"]["id"] == "txdps/TX-N1"
            bare.kill()
            bare.start()
            back = time.monotonic()
            assert await c.next_of("clear", timeout_s=20) == {
                "type": "clear",
                "id": "txdps/TX-N1",
                "reason": "expired",
            }
            cleared = time.monotonic() - back
            r = await signed(system.http, "GET", "/v1/alerts/TX-N1", agency)
            assert r.status_code == 404
            await system.post(agency, alert_doc("TX-N2", polygon=square(*SA, 0.1)))
            assert (await c.next_of("interrupt", timeout_s=20))["alert"]["id"] == "txdps/TX-N2"
            print(
                f"\n[measure] redis restarted without AOF: lost alert cleared on clients "
                f"{cleared:.2f} s and new alert delivered {time.monotonic() - back:.2f} s "
                "after redis was back"
            )
    finally:
        bare.stop()


@pytest.mark.asyncio
async def test_slow_client_is_dropped_others_served_and_it_resyncs(
    settings: Settings, agency: Agency
) -> None:
    """A client that stops reading is cut off at write_limit_bytes; a reading client
    gets every alert meanwhile; the slow one reconnects and gets what it missed."""
    local = settings.replace(write_limit_bytes=4096)
    async with running_system(local) as system:
        fast = await Client.open(system.stream_url, lat=SA[0], lon=SA[1])
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.setblocking(False)
        host, port = system.stream_url.split("//")[1].split("/")[0].split(":")
        await asyncio.get_running_loop().sock_connect(raw, (host, int(port)))
        ws = await connect(system.stream_url, sock=raw, compression=None, max_queue=1)
        await ws.send(json.dumps({"type": "hello", "lat": SA[0], "lon": SA[1], "seen": []}))
        assert json.loads(await ws.recv())["type"] == "welcome"
        started = time.monotonic()
        names = [f"txdps/TX-SLOW-{i}" for i in range(60)]
        for name in names:  # ~2 KB frames; the slow client reads none of them
            await system.post(
                agency,
                alert_doc(name.partition("/")[2], polygon=square(*SA, 0.1), description="x" * 2000),
            )
            assert (await fast.next_of("interrupt"))["alert"]["id"] == name
        dropped = time.monotonic() - started
        with pytest.raises(ConnectionClosed):  # cut off (reset) long before the last alert
            while True:
                await ws.recv()
        # It reconnects with what it had shown (here: all but the last three); the
        # hello answer brings the rest (it must fit the write limit: 4 KiB here).
        seen = [(name, 1) for name in names[:-3]]
        back = await Client.open(system.stream_url, lat=SA[0], lon=SA[1], seen=seen)
        got = [(await back.next_of("interrupt"))["alert"]["id"] for _ in range(3)]
        assert sorted(got) == sorted(names[-3:])
        print(
            f"\n[measure] slow client: 60 alerts to a reading client in {dropped:.2f} s; "
            "the non-reading one was cut off and resynced on reconnect"
        )
