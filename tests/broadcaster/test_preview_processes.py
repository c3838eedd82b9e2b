"""Preview reach across real broadcaster processes: each publishes its counts, reach sums them."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from amber_relay.redis_server import RedisServer
from tests.support import Agency, Client, ServerProcess, alert_doc, seconds, signed

pytestmark = pytest.mark.asyncio

SA = (29.42, -98.49)  # inside Bexar County (48029)
HOUSTON = (29.76, -95.37)


@pytest_asyncio.fixture
async def serves(
    redis_server: RedisServer, agencies_file: Path
) -> AsyncIterator[list[ServerProcess]]:
    """Two ``amber-relay serve`` processes on their own ports, publishing counts every 0.2 s."""
    env = {
        "AMBER_REDIS_URL": redis_server.url,
        "AMBER_REDIS_PREFIX": f"reach-{uuid.uuid4().hex[:10]}:",
        "AMBER_AGENCIES_FILE": str(agencies_file),
        "AMBER_REACH_PUBLISH_S": "0.2",
    }
    procs = [ServerProcess(["serve", "--port", "0", "--stream-port", "0"], env) for _ in range(2)]
    try:
        for p in procs:
            await p.wait_ready()
        yield procs
    finally:
        for p in procs:
            p.stop()


_last_t = 0


def fresh_t() -> int:
    """A signature time never used before in this run (signatures are single use)."""
    global _last_t
    _last_t = max(int(time.time()), _last_t + 1)
    return _last_t


async def reach_until(
    api_url: str, agency: Agency, doc: dict[str, Any], want: int
) -> dict[str, Any]:
    """Preview (a fresh signature each time) until the reach is ``want``; bounded."""
    body: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=api_url, timeout=seconds(10)) as http:
        for _ in range(150):
            r = await signed(http, "POST", "/v1/alerts/preview", agency, doc, t=fresh_t())
            assert r.status_code == 200, r.text
            body = r.json()
            if body["reach"]["connected"] == want:
                return body
            await asyncio.sleep(0.2)  # t advances one per try: stay near the clock
    raise AssertionError(f"reach never became {want}: {body}")


async def test_reach_sums_every_broadcaster_process(
    serves: list[ServerProcess], agency: Agency
) -> None:
    """Clients inside on two processes are summed; a stopped process's count expires."""
    a, b = (p.ready for p in serves)
    on_a = [await Client.open(a["stream_url"], lat=SA[0], lon=SA[1] + i * 0.01) for i in range(2)]
    on_b = [await Client.open(b["stream_url"], lat=SA[0] - i * 0.01, lon=SA[1]) for i in range(3)]
    on_b.append(await Client.open(b["stream_url"], region="48029"))
    away = [await Client.open(s["stream_url"], lat=HOUSTON[0], lon=HOUSTON[1]) for s in (a, b)]
    assert on_a[0].frames[0]["node"] != on_b[0].frames[0]["node"]
    doc = alert_doc("TX-REACH", same=["048029"])
    body = await reach_until(a["api_url"], agency, doc, 6)
    assert body["ok"] is True and body["stored"] is False
    # the same figure from the other process's API: both read every snapshot
    await reach_until(b["api_url"], agency, doc, 6)
    serves[1].stop()  # its snapshot expires after three publishing intervals
    await reach_until(a["api_url"], agency, doc, 2)
    for c in on_a + away[:1]:
        await c.close()
