"""The socket index: filing and unfiling keep cells consistent; matching is exact."""

from __future__ import annotations

import random

import numpy as np
import shapely

from amber_relay import geodata
from amber_relay.geo import Area
from amber_relay.model import Circle
from broadcaster.index import Cell, SocketIndex


class Point:
    __slots__ = ("cell", "lat", "lon", "region", "slot")

    def __init__(self, lat: float, lon: float) -> None:
        self.lat: float | None = lat
        self.lon: float | None = lon
        self.region: str | None = None
        self.cell: Cell | None = None
        self.slot = -1


def flat(chunks: list[list[Point]]) -> set[Point]:
    out: set[Point] = set()
    for chunk in chunks:
        out.update(chunk)
    return out


def test_index_stays_consistent_under_churn() -> None:
    """Random adds, moves and removes keep every socket at its slot in its cell."""
    rng = random.Random(7)
    index: SocketIndex[Point] = SocketIndex(0.125)
    live: list[Point] = []
    for _ in range(5000):
        op = rng.random()
        if op < 0.5 or not live:
            p = Point(rng.uniform(29, 30), rng.uniform(-99, -98))
            index.add(p)
            live.append(p)
        elif op < 0.8:
            p = rng.choice(live)
            index.remove(p)
            p.lat, p.lon = rng.uniform(29, 30), rng.uniform(-99, -98)
            index.add(p)
        else:
            p = live.pop(rng.randrange(len(live)))
            index.remove(p)
            index.remove(p)  # idempotent
    assert len(index) == len(live)
    for cell, bucket in index.cells.items():
        assert bucket.socks
        for i, p in enumerate(bucket.socks):
            assert (p.cell, p.slot) == (cell, i)
            assert (bucket.lats[i], bucket.lons[i]) == (p.lat, p.lon)


def test_match_is_exact_for_counties_states_and_circles() -> None:
    """Matching equals a brute-force point-in-area test for polygon and circle areas."""
    geo = geodata.load()
    rng = np.random.default_rng(11)
    lats = rng.uniform(28.0, 31.5, 20_000)
    lons = rng.uniform(-100.5, -96.0, 20_000)
    index: SocketIndex[Point] = SocketIndex(0.125)
    points = [Point(la, lo) for la, lo in zip(lats.tolist(), lons.tolist(), strict=True)]
    for p in points:
        index.add(p)
    circle = Circle(lat=29.42, lon=-98.49, radius_km=60.0)
    for area in (Area(geo.counties["48029"]), Area(geo.states["48"]), Area(None, (circle,))):
        got = flat(index.match(area, (), {}))
        want = {p for p, ok in zip(points, area.contains_many(lats, lons), strict=True) if ok}
        assert got == want
    assert shapely.intersects_xy(geo.counties["48029"], -98.49, 29.42)


def test_match_is_exact_for_an_area_split_at_the_antimeridian() -> None:
    """A MultiPolygon cut at 180 deg matches points on both sides and nothing in between."""
    west = [[172.0, 51.0], [180.0, 51.0], [180.0, 54.0], [172.0, 54.0], [172.0, 51.0]]
    east = [[-180.0, 51.0], [-176.0, 51.0], [-176.0, 54.0], [-180.0, 54.0], [-180.0, 51.0]]
    area = Area.from_coords([[west], [east]], [])
    index: SocketIndex[Point] = SocketIndex(0.125)
    inside = [Point(52.9, 172.9), Point(52.0, 179.99), Point(52.0, -179.99), Point(53.5, -176.5)]
    outside = [Point(51.5, -0.13), Point(52.0, 0.0), Point(52.0, 171.5), Point(52.0, -175.5)]
    for p in inside + outside:
        index.add(p)
    assert flat(index.match(area, [], {})) == set(inside)
    assert area.contains(52.0, 180.0) and area.contains(52.0, -180.0)
