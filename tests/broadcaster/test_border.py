"""SAME alerts at county lines, through the live hook, real sockets and the poll fallback.

Points come from the Census 1:500k outlines (the pinned plotly-geo wheel): for pairs of
neighbouring counties in seven states, points 30 m inside the target county along
their shared line must get the target's SAME alert, and points on the neighbour's land
at least 300 m from the target must not. County-tagged clients and the poll endpoint
are held to the same.
"""

from __future__ import annotations

import math
from importlib import resources

import numpy as np
import pytest
import shapely
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

from tests.conftest import System
from tests.support import Agency, Client, alert_doc
from tools.build_geodata import read_500k

pytestmark = pytest.mark.asyncio

# (target, neighbour): seven states; known trouble spots of the old 1:10m data among them
# (Bossier City LA was counted in Caddo; West Haven CT and Atlantic City NJ in no county;
# Falls Church VA, an enclave of Fairfax, had no outline at all).
PAIRS = [
    ("22015", "22017"),  # Bossier | Caddo, LA
    ("09009", "09001"),  # New Haven | Fairfield, CT (former counties)
    ("34001", "34009"),  # Atlantic | Cape May, NJ
    ("48029", "48091"),  # Bexar | Comal, TX
    ("17031", "17043"),  # Cook | DuPage, IL
    ("53033", "53053"),  # King | Pierce, WA
    ("51610", "51059"),  # Falls Church | Fairfax, VA
]
INSIDE_M = 30.0
OUTSIDE_M = 300.0
SAMPLES = 2  # points per shared line, each side
_M_PER_DEG = 111_195.0


@pytest.fixture(scope="module")
def outlines() -> dict[str, BaseGeometry]:
    pkg = resources.files("_plotly_geo").joinpath("package_data")
    rows = read_500k(
        pkg.joinpath("cb_2016_us_county_500k.shp").read_bytes(),
        pkg.joinpath("cb_2016_us_county_500k.dbf").read_bytes(),
    )
    return {fips: geom for fips, (_, geom) in rows.items()}


Point = tuple[float, float]


def _points(target: BaseGeometry, neighbour: BaseGeometry) -> tuple[list[Point], list[Point]]:
    """(lat, lon) points INSIDE_M inside ``target`` and >= OUTSIDE_M from it in ``neighbour``.

    Along the shared line, in an equirectangular plane at the pair's latitude (accurate
    to well under 1 % over a county): the inside points are on the outline shrunk by
    INSIDE_M, the outside ones on the neighbour's land minus the target grown by OUTSIDE_M.
    """
    k = np.array([math.cos(math.radians(target.centroid.y)) * _M_PER_DEG, _M_PER_DEG])
    t = shapely.transform(target, lambda xy: xy * k)
    n = shapely.transform(neighbour, lambda xy: xy * k)
    shared = shapely.line_merge(shapely.intersection(t.boundary, n.boundary))
    lines = [g for g in getattr(shared, "geoms", [shared]) if g.length > 0]
    line = max(lines, key=lambda g: g.length)
    shrunk = t.buffer(-INSIDE_M).boundary
    beyond = n.difference(t.buffer(OUTSIDE_M))
    inside: list[Point] = []
    outside: list[Point] = []
    for i in range(SAMPLES):
        p = line.interpolate((i + 1) / (SAMPLES + 1), normalized=True)
        for into, out in ((shrunk, inside), (beyond, outside)):
            q = nearest_points(into, p)[0]
            lon, lat = q.x / k[0], q.y / k[1]
            out.append((round(lat, 7), round(lon, 7)))
    return inside, outside


async def test_border_same_alerts_reach_30_m_inside_and_not_300_m_outside(
    system: System, agency: Agency, outlines: dict[str, BaseGeometry]
) -> None:
    """Each county's SAME alert reaches points 30 m inside its line, not 300 m beyond it."""
    national = Agency("ncmec", agency.secret)  # jurisdiction US
    cases = []
    for target, neighbour in PAIRS:
        inside, outside = _points(outlines[target], outlines[neighbour])
        for lat, lon in inside:
            assert outlines[target].contains(shapely.Point(lon, lat))
        for lat, lon in outside:
            assert outlines[neighbour].contains(shapely.Point(lon, lat))
            assert not outlines[target].intersects(shapely.Point(lon, lat))
        cases.append((target, inside, outside))
    far = {t: _far_county(outlines, t) for t, _ in PAIRS}
    clients: list[tuple[Client, str, bool]] = []
    for target, inside, outside in cases:
        for lat, lon in inside:
            clients.append((await Client.open(system.stream_url, lat=lat, lon=lon), target, True))
        for lat, lon in outside:
            clients.append((await Client.open(system.stream_url, lat=lat, lon=lon), target, False))
        clients.append((await Client.open(system.stream_url, region=target), target, True))
        clients.append((await Client.open(system.stream_url, region=far[target]), target, False))
    for target, _, _ in cases:
        await system.post(national, alert_doc(f"same-{target}", same=["0" + target]))
    # The sentinel reaches every client (a 20 m circle round each point, the far
    # counties by SAME); frames arrive in stream order, so what a client got before it
    # is everything it will get of the alerts above.
    points = [p for _, i, o in cases for p in (*i, *o)]
    sentinel = alert_doc(
        "sentinel",
        circles=[{"lat": lat, "lon": lon, "radius_km": 0.02} for lat, lon in points],
        same=["0" + t for t, _, _ in cases] + ["0" + f for f in far.values()],
    )
    await system.post(national, sentinel)
    for client, target, expected in clients:
        got = set()
        while True:
            frame = await client.next_of("interrupt")
            if frame["alert"]["id"] == "ncmec/sentinel":
                break
            got.add(frame["alert"]["id"])
        assert (f"ncmec/same-{target}" in got) is expected, (target, client.frames)
    for client, _, _ in clients:
        await client.close()
    # The poll fallback answers the same.
    for target, inside, outside in cases:
        for (lat, lon), expected in [*((p, True) for p in inside), *((p, False) for p in outside)]:
            r = await system.http.get("/v1/alerts/active", params={"lat": lat, "lon": lon})
            ids = {a["id"] for a in r.json()["alerts"]}
            assert (f"ncmec/same-{target}" in ids) is expected, (target, lat, lon, ids)
        for region, expected in ((target, True), (far[target], False)):
            r = await system.http.get("/v1/alerts/active", params={"region": region})
            ids = {a["id"] for a in r.json()["alerts"]}
            assert (f"ncmec/same-{target}" in ids) is expected, (target, region, ids)


def _far_county(outlines: dict[str, BaseGeometry], target: str) -> str:
    """A county of the same state more than ~10 km from ``target``."""
    t = outlines[target]
    return next(
        f
        for f in sorted(outlines)
        if f[:2] == target[:2] and f != target and outlines[f].distance(t) > 0.1
    )
