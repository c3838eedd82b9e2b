"""The feed never goes deaf (bad stream entries, a killed connection, a paused Redis)
and applies versions in stream order, each once, with their areas built off the loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import cast

import msgspec
import pytest
import pytest_asyncio
from redis.asyncio import Redis

from amber_relay import geodata
from amber_relay.model import AlertRecord
from amber_relay.redis_server import RedisServer
from amber_relay.settings import Settings
from amber_relay.store import Event, Store
from broadcaster.feed import follow
from broadcaster.hub import Hub, Prepared
from broadcaster.index import Cell
from tests.conftest import System, running_system
from tests.support import Agency, Client, alert_doc, seconds, signed, square, stored_record

pytestmark = pytest.mark.asyncio

SA = (29.42, -98.49)


@pytest_asyncio.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    assert settings.redis_url is not None
    client: Redis = Redis.from_url(settings.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A private Redis this test may pause or kill."""
    server = RedisServer(tmp_path / "redis", appendonly=False)
    server.start()
    yield server
    server.stop()


async def ready(system: System) -> tuple[int, dict[str, object]]:
    r = await system.http.get("/readyz")
    body: dict[str, object] = r.json()
    return r.status_code, body


async def wait_ready(system: System, want: int, timeout_s: float = 20) -> dict[str, object]:
    """Poll /readyz until it answers ``want`` (bounded)."""
    async with asyncio.timeout(seconds(timeout_s)):
        while True:
            code, body = await ready(system)
            if code == want:
                return body
            await asyncio.sleep(0.1)


BAD_ENTRIES: list[tuple[str, dict[str, bytes]]] = [
    ("undecodable", {"e": b"\xc1 not msgpack"}),
    ("unknown kind", {"e": msgspec.msgpack.encode({"kind": "retract", "id": "X", "version": 1})}),
    ("missing fields", {"e": msgspec.msgpack.encode({"kind": "publish", "id": "X", "version": 1})}),
    ("no e field", {"x": b"1"}),
]


@pytest.mark.parametrize(("what", "fields"), BAD_ENTRIES, ids=[w for w, _ in BAD_ENTRIES])
async def test_bad_entry_is_logged_once_and_skipped(
    system: System,
    agency: Agency,
    redis: Redis,
    caplog: pytest.LogCaptureFixture,
    what: str,
    fields: dict[str, bytes],
) -> None:
    """A bad events-stream entry is logged once with its id; the next real alert arrives."""
    c = await Client.open(system.stream_url, lat=SA[0], lon=SA[1])
    caplog.set_level(logging.WARNING, logger="amber_relay.feed")
    entry = (await redis.xadd(system.settings.redis_prefix + "events", fields)).decode()  # type: ignore[arg-type]
    started = time.monotonic()
    await system.post(agency, alert_doc("TX-AFTER-BAD", polygon=square(*SA, 0.1)))
    assert (await c.next_of("interrupt"))["alert"]["id"] == "txdps/TX-AFTER-BAD"
    print(
        f"\n[measure] bad entry ({what}) -> next alert delivered in "
        f"{time.monotonic() - started:.3f} s"
    )
    naming = [r for r in caplog.records if entry in r.getMessage()]
    assert len(naming) == 1, [r.getMessage() for r in caplog.records]
    assert naming[0].levelno == logging.ERROR
    code, _ = await ready(system)
    assert code == 200


async def test_feed_connection_killed_mid_read_recovers(
    system: System, agency: Agency, redis: Redis
) -> None:
    """CLIENT KILL on the feed's blocking XREAD: the feed resyncs and alerts keep coming."""
    c = await Client.open(system.stream_url, lat=SA[0], lon=SA[1])
    async with asyncio.timeout(seconds(10)):
        while True:  # the feed's connection is the one blocked in XREAD on our stream
            clients = await redis.client_list()
            readers = [x for x in clients if x.get("cmd") == "xread"]
            if readers:
                break
            await asyncio.sleep(0.05)
    for reader in readers:
        await redis.client_kill_filter(_id=reader["id"])
    killed = time.monotonic()
    await system.post(agency, alert_doc("TX-AFTER-KILL", polygon=square(*SA, 0.1)))
    assert (await c.next_of("interrupt"))["alert"]["id"] == "txdps/TX-AFTER-KILL"
    print(
        f"\n[measure] feed connection killed -> alert delivered in "
        f"{time.monotonic() - killed:.3f} s"
    )
    await wait_ready(system, 200)


async def test_readyz_follows_redis_and_feed_lag(
    own_redis: RedisServer, settings: Settings, agency: Agency
) -> None:
    """/readyz: 200 when following; 503 'feed behind' while Redis is paused; 503 'redis
    unreachable' while it is down; 200 again after; /healthz stays 200 without error text."""
    local = settings.replace(redis_url=own_redis.url, feed_max_lag_s=3.0)
    async with running_system(local) as system:
        body = await wait_ready(system, 200)
        assert body["ready"] is True
        admin: Redis = Redis.from_url(own_redis.url)
        try:
            # Long enough to be seen on a loaded machine; unpaused as soon as it is.
            await admin.client_pause(int(seconds(30) * 1000), all=True)
            body = await wait_ready(system, 503)
            assert body["code"] == "not_ready"
            assert "feed behind" in str(body["detail"]) or body["detail"] == "redis unreachable"
        finally:
            await admin.client_unpause()
            await admin.aclose()
        await wait_ready(system, 200)

        own_redis.kill()
        down = time.monotonic()
        body = await wait_ready(system, 503)
        assert body["detail"] in ("redis unreachable", "feed not synced") or "feed behind" in str(
            body["detail"]
        )
        health = await system.http.get("/healthz")
        assert health.status_code == 200
        text = health.text.lower()
        assert "error" not in text and "127.0.0.1" not in text and "redis" not in text
        own_redis.start()
        await wait_ready(system, 200, timeout_s=30)
        print(
            f"\n[measure] redis down->up: /readyz 200 again {time.monotonic() - down:.2f} s "
            "after the kill (restart included)"
        )
        c = await Client.open(system.stream_url, lat=SA[0], lon=SA[1])
        await system.post(agency, alert_doc("TX-BACK", polygon=square(*SA, 0.1)))
        assert (await c.next_of("interrupt", timeout_s=20))["alert"]["id"] == "txdps/TX-BACK"


async def test_periodic_resync_forgets_end_markers_past_retention(
    settings: Settings, agency: Agency
) -> None:
    """Once an ended alert is past retention (swept from Redis), the next periodic resync
    drops it from the broadcaster's memory too: hellos no longer get its clear."""
    local = settings.replace(retention_s=1, feed_resync_s=0.5)
    async with running_system(local) as system:
        await system.post(agency, alert_doc("TX-OLD", polygon=square(*SA, 0.1)))
        await system.wait_active("txdps/TX-OLD", *SA)
        r = await signed(system.http, "DELETE", "/v1/alerts/TX-OLD", agency)
        assert r.status_code == 202, r.text

        async def clears() -> list[dict[str, str]]:
            poll = await system.http.get(
                "/v1/alerts/active", params={"lat": SA[0], "lon": SA[1], "seen": "txdps/TX-OLD:1"}
            )
            found: list[dict[str, str]] = poll.json()["clears"]
            return found

        async with asyncio.timeout(seconds(10)):
            while True:  # the cancel reached the hub
                if await clears() == [{"id": "txdps/TX-OLD", "reason": "cancelled"}]:
                    break
                await asyncio.sleep(0.05)
        async with asyncio.timeout(seconds(20)):
            while True:  # swept from Redis after 1 s, then forgotten at a resync
                if await clears() == []:
                    break
                await asyncio.sleep(0.1)


# -- areas built off the loop -----------------------------------------------------------


def _record(alert_id: str, version: int) -> AlertRecord:
    return stored_record(alert_id, version, centre=SA, half_deg=0.1, regions=[])


class _Sock:
    """A hub socket that keeps the frames it is sent, decoded."""

    def __init__(self, lat: float, lon: float) -> None:
        self.lat: float | None = lat
        self.lon: float | None = lon
        self.region: str | None = None
        self.cell: Cell | None = None
        self.slot = 0
        self.frames: list[tuple[str, object]] = []

    def send(self, data: bytes) -> bool:
        frame = json.loads(data[data.index(b"{") :])  # past the WebSocket header
        key = "version" if frame["type"] == "interrupt" else "reason"
        detail = frame["alert"]["version"] if key == "version" else frame.get("reason")
        self.frames.append((frame["type"], detail))
        return True


class _Stream:
    """The part of a Store the feed reads: nothing active, then one batch of events."""

    def __init__(self, events: list[Event]) -> None:
        self.batch = [(f"{i + 1}-0", e) for i, e in enumerate(events)]
        self.drained = asyncio.Event()

    async def last_event_id(self) -> str:
        return "0-0"

    async def active(self) -> dict[str, AlertRecord]:
        return {}

    async def ended(self) -> dict[str, str]:
        return {}

    async def read_events(
        self, after: str, *, block_ms: int, count: int = 100
    ) -> list[tuple[str, Event]]:
        if self.batch:
            batch, self.batch = self.batch, []
            return batch
        self.drained.set()  # every event of the batch was applied
        await asyncio.Event().wait()  # a stream with nothing more: cancelled at the end
        return []


async def test_version_published_while_its_area_is_built_is_applied_in_order_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Version 2's area is built in a thread while the loop serves a hello (which gets
    version 1); then versions 2 and the cancel follow in stream order, each sent once."""
    hub = Hub(geodata.load(), cell_deg=Settings().grid_deg)
    early = _Sock(*SA)
    hub.hello(early, [], "n", 25.0)
    building, release = threading.Event(), threading.Event()
    loop_thread = threading.get_ident()
    threads: list[int] = []
    build = hub.prepare

    def slow_prepare(record: AlertRecord, occupied: Iterable[Cell]) -> Prepared:
        threads.append(threading.get_ident())
        if record.version == 2:
            building.set()
            release.wait(seconds(10))
        return build(record, occupied)

    monkeypatch.setattr(hub, "prepare", slow_prepare)
    stream = _Stream(
        [
            Event(kind="publish", id="TX-A", version=1, record=_record("TX-A", 1)),
            Event(kind="publish", id="TX-A", version=2, record=_record("TX-A", 2)),
            Event(kind="clear", id="TX-A", version=2, reason="cancelled"),
        ]
    )
    follower = asyncio.create_task(follow(cast(Store, stream), hub, asyncio.Event()))
    try:
        assert await asyncio.to_thread(building.wait, seconds(10))
        # Mid-build the loop runs, and the hub still holds version 1 as a whole.
        late = _Sock(*SA)
        hub.hello(late, [], "n", 25.0)
        assert early.frames == [("welcome", None), ("interrupt", 1)]
        assert late.frames == [("welcome", None), ("interrupt", 1)]
        release.set()
        async with asyncio.timeout(seconds(10)):
            await stream.drained.wait()
    finally:
        release.set()
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
    for sock in (early, late):
        assert sock.frames == [
            ("welcome", None),
            ("interrupt", 1),
            ("interrupt", 2),
            ("clear", "cancelled"),
        ]
    assert threads and loop_thread not in threads


async def test_cells_occupied_after_the_area_was_built_are_still_matched() -> None:
    """A Prepared built before a socket's cell was occupied still reaches that socket:
    publish classifies the cells the snapshot did not hold."""
    hub = Hub(geodata.load(), cell_deg=Settings().grid_deg)
    record = _record("TX-B", 1)
    prepared = hub.prepare(record, list(hub.index.cells))  # no socket yet
    sock = _Sock(*SA)
    hub.index.add(sock)
    assert hub.publish(record, prepared) == 1
    assert sock.frames == [("interrupt", 1)]
