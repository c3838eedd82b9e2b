"""A worker SIGKILLed mid-job (during a photo fetch): the job runs again, published once."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from amber_relay.redis_server import RedisServer
from tests.support import Agency, Client, ServerProcess, alert_doc, seconds, signed, square
from tests.workers._photoserver import SlowPhotos

pytestmark = pytest.mark.asyncio

SA = (29.42, -98.49)


async def test_worker_killed_during_photo_fetch_publishes_once(
    redis_server: RedisServer, agencies_file: Path, agency: Agency, slow_photos: SlowPhotos
) -> None:
    """SIGKILL the worker while it fetches a photo (one already stored): a new worker
    runs the job again, the alert arrives once with both photos, nothing twice."""
    prefix = f"crash-{uuid.uuid4().hex[:10]}:"
    env = {
        "AMBER_REDIS_URL": redis_server.url,
        "AMBER_REDIS_PREFIX": prefix,
        "AMBER_AGENCIES_FILE": str(agencies_file),
        "AMBER_PHOTO_ALLOW_PRIVATE_HOSTS": "1",
        "AMBER_DRAIN_S": "1",
    }
    serve = ServerProcess(["serve", "--port", "0", "--stream-port", "0"], env)
    worker = ServerProcess(["worker"], env)
    second: ServerProcess | None = None
    redis: Redis = Redis.from_url(redis_server.url)
    try:
        ready = await serve.wait_ready()
        c = await Client.open(ready["stream_url"], lat=SA[0], lon=SA[1])
        doc = alert_doc(
            "TX-CRASH",
            polygon=square(*SA, 0.1),
            photos=[{"url": f"{slow_photos.url}/fast.png"}, {"url": f"{slow_photos.url}/slow.png"}],
        )
        async with httpx.AsyncClient(base_url=ready["api_url"], timeout=seconds(10)) as http:
            r = await signed(http, "POST", "/v1/alerts", agency, doc)
            assert r.status_code == 202, r.text
            # Readiness signals, no sleeps: the slow fetch is open and the fast photo is
            # stored (work done before the crash that the re-run must not duplicate).
            async with asyncio.timeout(seconds(30)):
                await slow_photos.slow_requested.wait()
                while True:
                    if [k async for k in redis.scan_iter(match=f"{prefix}media:*")]:
                        break
                    await asyncio.sleep(0.02)
            worker.kill()
            killed = time.monotonic()
            second = ServerProcess(["worker"], env)
            try:
                frame = await c.next_of("interrupt", timeout_s=60)
            except TimeoutError:
                raise AssertionError("\n".join(second.lines + ["--"] + serve.lines)) from None
            recovered = time.monotonic() - killed
            assert frame["alert"]["id"] == "txdps/TX-CRASH"
            assert len(frame["alert"]["photos"]) == 2
            assert slow_photos.slow_hits == 2
            print(
                f"\n[measure] worker SIGKILLed mid-fetch -> alert delivered {recovered:.1f} s later"
            )
            # Nothing twice: the next frame on the socket is a later alert.
            national = Agency("ncmec", agency.secret)
            r = await signed(
                http, "POST", "/v1/alerts", national, alert_doc("SENTINEL", polygon=square(*SA, 1))
            )
            assert r.status_code == 202, r.text
            assert (await c.next_of("interrupt"))["alert"]["id"] == "ncmec/SENTINEL"
            status = await signed(http, "GET", "/v1/alerts/TX-CRASH", agency)
            assert status.json()["applied_version"] == 1
    finally:
        await redis.aclose()
        for p in (serve, worker, second):
            if p is not None:
                p.stop()
