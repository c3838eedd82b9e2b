"""Bounded Redis: everything written for an alert is gone once it ended + retention_s."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import pytest_asyncio
from PIL import Image
from redis.asyncio import Redis

from amber_relay import geodata
from amber_relay.agencies import Agency as AgencyConfig
from amber_relay.ingest import parse_json, validate
from amber_relay.model import AlertRecord, PhotoIn
from amber_relay.redis_server import RedisServer
from amber_relay.settings import Settings
from amber_relay.store import Store, Submission
from tests.support import alert_doc, seconds, square
from workers.photos import PhotoFetcher
from workers.tasks import apply, expire_due

pytestmark = pytest.mark.asyncio

PREFIX = "churn:"
RETENTION_S = 2
N = 2000


@pytest_asyncio.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[Redis]:
    """A private Redis holding nothing but this test's keys (DBSIZE and INFO are ours)."""
    server = RedisServer(tmp_path / "redis", appendonly=False)
    server.start()
    client: Redis = Redis.from_url(server.url)
    try:
        yield client
    finally:
        await client.aclose()
        server.stop()


def png(i: int) -> str:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (i % 256, (i // 256) % 256, 7)).save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


async def memory(redis: Redis) -> tuple[int, int]:
    info: dict[str, Any] = await redis.info("memory")
    return int(info["used_memory"]), int(await redis.dbsize())


def base_record() -> AlertRecord:
    """One real validated alert record (the ingest path), to stamp ids onto."""
    doc = alert_doc("CHURN", polygon=square(29.42, -98.49, 0.1))
    agency = AgencyConfig("txdps", "x" * 32, ("48",))
    alert = parse_json(json.dumps(doc).encode())
    return validate(alert, agency, geodata.load(), Settings(), now=time.time()).record


async def churn_one(ctx: dict[str, Any], base: AlertRecord, i: int) -> None:
    """Create (maybe with a photo and a CAP link), update, then cancel or let expire."""
    store: Store = ctx["store"]
    alert_id = f"CHURN-{i}"
    now = time.time()
    photos = [PhotoIn(data=png(i))] if i % 3 == 0 else []
    rec = msgspec.structs.replace(
        base,
        id=alert_id,
        expires_ts=now + 3,
        content=msgspec.structs.replace(base.content, id=alert_id),
        pending_photos=photos,
    )
    sub = Submission(kind="alert", agency="txdps", received_ts=now, record=rec)
    v, _, _ = await store.submit(f"json:txdps:{alert_id}:1", alert_id, sub)
    await apply(ctx, alert_id, v)
    if i % 5 == 0:
        await store.remember_cap("txdps", "txdps@example.gov", f"cap-{i}", alert_id)
    await store.add_stats({(alert_id, v, "delivered"): 3, (alert_id, v, "shown"): 1})
    sub2 = Submission(
        kind="alert",
        agency="txdps",
        received_ts=now,
        record=msgspec.structs.replace(rec, expires_ts=now + 4),
    )
    v2, _, _ = await store.submit(f"json:txdps:{alert_id}:2", alert_id, sub2)
    await apply(ctx, alert_id, v2)
    if i % 2:
        cancel = Submission(kind="cancel", agency="txdps", received_ts=now)
        v3, _, _ = await store.submit(f"delete:txdps:{alert_id}", alert_id, cancel)
        await apply(ctx, alert_id, v3)


async def prefixed_keys(redis: Redis) -> list[str]:
    return sorted([k.decode() async for k in redis.scan_iter(match=PREFIX + "*", count=1000)])


async def test_churn_returns_redis_memory_to_baseline(own_redis: Redis) -> None:
    """2,000 alerts (updated, half cancelled, half expired; photos, CAP links, figures)
    leave nothing but the bounded events stream once retention_s has passed."""
    settings = Settings(redis_prefix=PREFIX, retention_s=RETENTION_S, stream_maxlen=100)
    store = Store(own_redis, PREFIX, retention_s=RETENTION_S, stream_maxlen=100)
    ctx: dict[str, Any] = {"store": store, "photos": PhotoFetcher(store, settings)}
    base = await asyncio.to_thread(base_record)
    baseline_mem, baseline_keys = await memory(own_redis)
    started = time.monotonic()
    for first in range(0, N, 100):
        await asyncio.gather(*(churn_one(ctx, base, i) for i in range(first, first + 100)))
    peak_mem, peak_keys = await memory(own_redis)
    written_s = time.monotonic() - started
    assert peak_keys > N  # versions, idempotency answers, media, figures...
    # An agency can still read an ended alert's state and figures within retention.
    last = f"CHURN-{N - 1}"  # ended last: still within retention
    assert (await store.meta(last))["state"] == "cancelled"
    assert (await store.stats(last))[1] == {"delivered": 3, "shown": 1}

    # The worker's cron: expire what is due, sweep end markers; until only the
    # (length-bounded) events stream is left.
    async with asyncio.timeout(seconds(60)):
        while True:
            await expire_due(ctx)
            left = [k for k in await prefixed_keys(own_redis) if k != PREFIX + "events"]
            if not left:
                break
            await asyncio.sleep(0.5)
    clean_s = time.monotonic() - started - written_s
    final_mem, final_keys = await memory(own_redis)
    print(
        f"\n[measure] churn of {N} alerts in {written_s:.1f} s: used_memory baseline "
        f"{baseline_mem / 1e6:.2f} MB ({baseline_keys} keys), peak {peak_mem / 1e6:.2f} MB "
        f"({peak_keys} keys), after retention {final_mem / 1e6:.2f} MB ({final_keys} keys), "
        f"clean {clean_s:.1f} s after the last write (retention_s={RETENTION_S})"
    )
    assert final_keys <= baseline_keys + 1  # the events stream
    assert final_mem - baseline_mem < 3_000_000


async def test_shared_photo_outlives_an_ended_alert_while_another_shows_it(
    own_redis: Redis,
) -> None:
    """A photo two alerts show stays while one is active; it expires after the last ends."""
    settings = Settings(redis_prefix=PREFIX, retention_s=1, stream_maxlen=100)
    store = Store(own_redis, PREFIX, retention_s=1, stream_maxlen=100)
    ctx: dict[str, Any] = {"store": store, "photos": PhotoFetcher(store, settings)}
    base = await asyncio.to_thread(base_record)
    now = time.time()
    shas = []
    for alert_id in ("SHARED-A", "SHARED-B"):
        rec = msgspec.structs.replace(
            base,
            id=alert_id,
            expires_ts=now + 600,
            content=msgspec.structs.replace(base.content, id=alert_id),
            pending_photos=[PhotoIn(data=png(4242))],
        )
        sub = Submission(kind="alert", agency="txdps", received_ts=now, record=rec)
        v, _, _ = await store.submit(f"json:{alert_id}", alert_id, sub)
        await apply(ctx, alert_id, v)
        shas.append((await store.active())[alert_id].content.photos[0].sha256)
    assert shas[0] == shas[1]
    media = f"{PREFIX}media:{shas[0]}"
    assert await own_redis.ttl(media) == -1  # in use: no TTL

    async def cancel(alert_id: str) -> None:
        sub = Submission(kind="cancel", agency="txdps", received_ts=now)
        v, _, _ = await store.submit(f"delete:{alert_id}", alert_id, sub)
        await apply(ctx, alert_id, v)

    await cancel("SHARED-A")
    assert await own_redis.ttl(media) == -1  # B still shows it
    await cancel("SHARED-B")
    assert 0 < await own_redis.ttl(media) <= 1
    async with asyncio.timeout(seconds(10)):
        while True:
            if not await own_redis.exists(media, media + ":type", media + ":users"):
                break
            await asyncio.sleep(0.2)
