"""Bounded cost per alert, end to end: adversarial areas through the live hook and stream."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
import pytest_asyncio
from redis.asyncio import Redis

from amber_relay import geodata, ingest
from amber_relay.model import AlertRecord
from amber_relay.redis_server import RedisServer
from amber_relay.settings import Settings
from amber_relay.store import Store
from broadcaster.hub import Hub
from tests.amber_relay.test_bounded import star
from tests.conftest import System, running_system
from tests.support import (
    Agency,
    Client,
    ServerProcess,
    alert_doc,
    seconds,
    signed,
    square,
    stored_record,
)

pytestmark = pytest.mark.asyncio

SA = (29.42, -98.49)  # San Antonio, Bexar County (48029)
CORNERS = [(48.0, -124.0), (47.0, -68.0), (25.5, -80.5), (32.7, -117.0)]  # on land


def _store(settings: Settings, redis: Redis) -> Store:
    return Store(
        redis,
        settings.redis_prefix,
        retention_s=settings.retention_s,
        stream_maxlen=settings.stream_maxlen,
    )


@pytest.mark.timeout(60)
async def test_star_of_3000_vertices_is_refused_fast_naming_ring_and_crossing(
    system: System, agency: Agency
) -> None:
    """The issue's 3,000-point star gets 422 self_intersection naming the ring and a crossing.

    The old code spent minutes (and gigabytes) in make_valid: the request times out.
    """
    doc = alert_doc("TX-STAR", polygon=[star(3000)])
    r = await signed(system.http, "POST", "/v1/alerts", agency, doc)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["code"] == "self_intersection"
    assert body["detail"].startswith("area.geometry ring 0 edge 0 crosses area.geometry ring 0")
    assert " at [-9" in body["detail"]


@pytest_asyncio.fixture
async def serve_process(
    redis_server: RedisServer, agencies_file: Path
) -> AsyncIterator[dict[str, str]]:
    """``amber-relay serve`` as a child process on the test Redis; yields its ready line."""
    env = {
        "AMBER_REDIS_URL": redis_server.url,
        "AMBER_REDIS_PREFIX": f"cost-{uuid.uuid4().hex[:10]}:",
        "AMBER_AGENCIES_FILE": str(agencies_file),
    }
    proc = ServerProcess(["serve", "--port", "0", "--stream-port", "0"], env)
    try:
        yield await proc.wait_ready()
    finally:
        proc.stop()


@pytest.mark.timeout(120)
async def test_corner_circles_do_not_hold_up_another_alert(
    serve_process: dict[str, str], agency: Agency
) -> None:
    """100 tiny circles at the US corners and a normal alert posted together: the normal
    alert reaches its client at once and the circles reach a client at a corner.

    The old broadcaster tested every county against every circle on its loop (~17 s):
    the normal alert's frame missed the bound.
    """
    import httpx

    national = Agency("ncmec", agency.secret)  # jurisdiction US in the agencies file
    circles = [
        {"lat": CORNERS[i % 4][0] + 0.001 * (i // 4), "lon": CORNERS[i % 4][1], "radius_km": 0.1}
        for i in range(100)
    ]
    url = serve_process["stream_url"]
    client = await Client.open(url, lat=SA[0], lon=SA[1])
    corner = await Client.open(url, lat=CORNERS[0][0], lon=CORNERS[0][1])
    async with httpx.AsyncClient(base_url=serve_process["api_url"], timeout=seconds(30)) as http:
        wide, normal = await asyncio.gather(
            signed(http, "POST", "/v1/alerts", national, alert_doc("US-CORNERS", circles=circles)),
            signed(
                http, "POST", "/v1/alerts", agency, alert_doc("TX-NOW", polygon=square(*SA, 0.1))
            ),
        )
    assert (wide.status_code, normal.status_code) == (202, 202), (wide.text, normal.text)
    frame = await client.next_of("interrupt", timeout_s=5)
    assert frame["alert"]["id"] == "txdps/TX-NOW"
    frame = await corner.next_of("interrupt", timeout_s=5)
    assert frame["alert"]["id"] == "ncmec/US-CORNERS"
    await client.close()
    await corner.close()


async def test_records_carry_regions_bbox_and_distinct_circles(
    system: System, agency: Agency, settings: Settings
) -> None:
    """The stored record carries its sorted counties, its box and its circles without repeats."""
    big = {"lat": SA[0], "lon": SA[1], "radius_km": 40.0}
    small = {"lat": SA[0], "lon": SA[1], "radius_km": 5.0}
    await system.post(agency, alert_doc("TX-FACTS", circles=[small, big, big]))
    await system.wait_active("txdps/TX-FACTS", *SA)
    assert settings.redis_url is not None
    redis = Redis.from_url(settings.redis_url)
    try:
        record = (await _store(settings, redis).active())["txdps/TX-FACTS"]
    finally:
        await redis.aclose()
    assert [(c.lat, c.lon, c.radius_km) for c in record.circles] == [(SA[0], SA[1], 40.0)]
    assert record.regions is not None and record.regions == sorted(record.regions)
    assert {"48029", "48091", "48187"} <= set(record.regions)  # Bexar, Comal, Guadalupe
    assert "48113" not in record.regions  # Dallas
    assert record.bbox is not None
    assert record.bbox[1] < SA[0] < record.bbox[3] and record.bbox[0] < SA[1] < record.bbox[2]


async def test_county_client_gets_circle_alert_by_carried_region(
    system: System, agency: Agency
) -> None:
    """A Comal-tagged client gets a circle around San Antonio reaching into Comal; the poll
    by region lists it; a Dallas-tagged client gets nothing before the sentinel."""
    comal = await Client.open(system.stream_url, region="48091")
    dallas = await Client.open(system.stream_url, region="48113")
    circle = {"lat": SA[0], "lon": SA[1], "radius_km": 40.0}
    await system.post(agency, alert_doc("TX-RING", circles=[circle]))
    assert (await comal.next_of("interrupt"))["alert"]["id"] == "txdps/TX-RING"
    poll = await system.http.get("/v1/alerts/active", params={"region": "48091"})
    assert [a["id"] for a in poll.json()["alerts"]] == ["txdps/TX-RING"]
    await system.sentinel(agency, [dallas], "SENTINEL-RING")


async def test_old_format_record_is_completed_and_served_by_region(
    settings: Settings, agency: Agency
) -> None:
    """A record stored before records carried regions (no regions, no bbox) still loads:
    a restarted server completes it off its loop and a county-tagged client gets it."""
    async with running_system(settings) as first:
        await first.post(agency, alert_doc("TX-OLD", polygon=square(29.3, -98.6, 0.05)))
        await first.wait_active("txdps/TX-OLD", 29.3, -98.6)
    assert settings.redis_url is not None
    redis = Redis.from_url(settings.redis_url)
    try:
        store = _store(settings, redis)
        raw = await redis.hget(store.keys.active, "txdps/TX-OLD")
        assert raw is not None
        fields = msgspec.msgpack.decode(raw)
        del fields["regions"], fields["bbox"]
        old = msgspec.msgpack.encode(fields)
        await redis.hset(store.keys.active, "txdps/TX-OLD", old)
    finally:
        await redis.aclose()
    record = msgspec.msgpack.decode(old, type=AlertRecord)
    assert record.regions is None and record.bbox is None
    assert "48029" in (ingest.complete(record, geodata.load()).regions or [])
    async with running_system(settings) as second:
        bexar = await Client.open(second.stream_url, region="48029")
        assert (await bexar.next_of("interrupt"))["alert"]["id"] == "txdps/TX-OLD"


async def test_hub_files_alerts_by_carried_region_across_versions_and_clears() -> None:
    """Region lookups follow each version's carried regions and forget cleared alerts."""

    def record(version: int, regions: list[str]) -> AlertRecord:
        return stored_record("TX-R", version, centre=(29.3, -98.6), half_deg=0.05, regions=regions)

    hub = Hub(geodata.load(), cell_deg=0.125)
    hub.publish(record(1, ["48029", "48091"]))
    assert [a.id for a in hub.answer(None, None, "48091", []).alerts] == ["TX-R"]
    hub.publish(record(2, ["48029"]))
    assert hub.answer(None, None, "48091", []).alerts == []
    assert [a.version for a in hub.answer(None, None, "48029", []).alerts] == [2]
    hub.clear("TX-R", "cancelled")
    assert hub.answer(None, None, "48029", []).alerts == []
    assert hub._by_region == {}
