"""Exact delivery: the interrupt reaches every socket inside the area and none outside."""

from __future__ import annotations

import asyncio
import math

import pytest

from tests.conftest import System
from tests.support import Agency, Client, alert_doc, seconds, square

pytestmark = pytest.mark.asyncio

KM_PER_DEG_LAT = 111.19492664455873  # pi * 6371.0088 / 180


def destination(lat: float, lon: float, bearing_deg: float, dist_km: float) -> tuple[float, float]:
    """The point ``dist_km`` from (lat, lon) along a great circle (sphere, R = 6371.0088 km)."""
    r = dist_km / 6371.0088
    p1, l1, b = math.radians(lat), math.radians(lon), math.radians(bearing_deg)
    p2 = math.asin(math.sin(p1) * math.cos(r) + math.cos(p1) * math.sin(r) * math.cos(b))
    l2 = l1 + math.atan2(
        math.sin(b) * math.sin(r) * math.cos(p1), math.cos(r) - math.sin(p1) * math.sin(p2)
    )
    return math.degrees(p2), math.degrees(l2)


async def test_polygon_alert_reaches_inside_and_not_outside(system: System, agency: Agency) -> None:
    """Sockets inside the polygon get the interrupt; sockets 100-500 m past an edge do not."""
    lat0, lon0, half = 29.42, -98.49, 0.1
    north = lat0 + half
    east = lon0 + half
    inside = [
        await Client.open(system.stream_url, lat=lat0, lon=lon0),
        await Client.open(system.stream_url, lat=north - 0.0005, lon=lon0),  # ~55 m inside
        await Client.open(system.stream_url, lat=lat0, lon=east - 0.0005),
    ]
    outside = []
    for d_m in (100, 250, 500):
        outside.append(
            await Client.open(system.stream_url, lat=north + d_m / 1000 / KM_PER_DEG_LAT, lon=lon0)
        )
        dlon = d_m / 1000 / (KM_PER_DEG_LAT * math.cos(math.radians(lat0)))
        outside.append(await Client.open(system.stream_url, lat=lat0, lon=east + dlon))
    answer = await system.post(agency, alert_doc("TX-1", polygon=square(lat0, lon0, half)))
    assert answer == {"id": "txdps/TX-1", "version": 1, "status": "accepted"}
    for c in inside:
        frame = await c.next_of("interrupt")
        assert frame["alert"]["id"] == "txdps/TX-1"
        assert frame["alert"]["version"] == 1
        assert frame["alert"]["infos"][0]["headline"] == "AMBER Alert: test child"
    await system.sentinel(agency, outside, "SENTINEL")


async def test_circle_alert_is_exact_at_its_rim(system: System, agency: Agency) -> None:
    """A circle matches by haversine distance: 30 m inside the rim yes, 30 m outside no."""
    lat0, lon0, radius_km = 29.4241, -98.4936, 40.0
    inside, outside = [], []
    for bearing in (0, 45, 90, 200, 300):
        lat, lon = destination(lat0, lon0, bearing, radius_km - 0.03)
        inside.append(await Client.open(system.stream_url, lat=lat, lon=lon))
        lat, lon = destination(lat0, lon0, bearing, radius_km + 0.03)
        outside.append(await Client.open(system.stream_url, lat=lat, lon=lon))
    doc = alert_doc("TX-CIRCLE", circles=[{"lat": lat0, "lon": lon0, "radius_km": radius_km}])
    await system.post(agency, doc)
    for c in inside:
        assert (await c.next_of("interrupt"))["alert"]["id"] == "txdps/TX-CIRCLE"
    await system.sentinel(agency, outside, "SENTINEL")


async def test_hello_after_publish_gets_the_active_alert(system: System, agency: Agency) -> None:
    """A client connecting inside an already active area gets it right after welcome."""
    first = await Client.open(system.stream_url, lat=29.42, lon=-98.49)
    await system.post(agency, alert_doc("TX-2", polygon=square(29.42, -98.49, 0.1)))
    await first.next_of("interrupt")
    late = await Client.open(system.stream_url, lat=29.43, lon=-98.48)
    assert late.frames[0]["active"] == 1
    assert (await late.next_of("interrupt"))["alert"]["id"] == "txdps/TX-2"


async def test_status_reports_matched_and_delivered(system: System, agency: Agency) -> None:
    """The signed status endpoint counts the sockets matched and delivered per version."""
    clients = [
        await Client.open(system.stream_url, lat=29.42, lon=-98.49 + i * 0.01) for i in range(3)
    ]
    await system.post(agency, alert_doc("TX-3", polygon=square(29.42, -98.49, 0.1)))
    for c in clients:
        await c.next_of("interrupt")
    for _ in range(200):  # the stats flush runs every 50 ms in tests; bounded polling
        body = await system.status(agency, "TX-3")
        if body["versions"]["1"]["delivered"] == 3:
            break
        await asyncio.sleep(seconds(0.02))
    assert body["state"] == "active"
    assert body["versions"]["1"]["matched"] == 3
    assert body["versions"]["1"]["delivered"] == 3
