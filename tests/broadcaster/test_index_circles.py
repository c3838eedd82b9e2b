"""Circles in the socket index: cells wholly inside a circle are taken whole, exactly."""

from __future__ import annotations

import random

import numpy as np
import pytest

from amber_relay.geo import Area, distances_km
from amber_relay.model import Circle
from broadcaster.index import BOUNDARY, INSIDE, OUTSIDE, SocketIndex
from tests.broadcaster.test_index import Point, flat


@pytest.mark.parametrize("lat", [0.0, 29.4, 45.0, 64.0])
@pytest.mark.parametrize("radius_km", [0.5, 15.0, 120.0, 1000.0])
def test_circle_cell_classes_are_sound(lat: float, radius_km: float) -> None:
    """Every point of an INSIDE cell (edges and corners included) is within the radius,
    and every point of an OUTSIDE cell beyond it, for cells at every level."""
    index: SocketIndex[Point] = SocketIndex(0.125)
    circle = Circle(lat=lat, lon=-100.0, radius_km=radius_km)
    area = Area(None, (circle,))
    d_lat = radius_km / 111.0 * 1.3 + 0.3
    ys = np.arange(int((lat - d_lat) / 0.125) - 2, int((lat + d_lat) / 0.125) + 2)
    d_lon = min(170.0, d_lat / max(0.2, np.cos(np.radians(min(80.0, abs(lat) + d_lat)))))
    xs = np.arange(int((-100 - d_lon) / 0.125) - 2, int((-100 + d_lon) / 0.125) + 2)
    rng = np.random.default_rng(3)
    seen = set()
    for scale in (16, 4, 1):
        by, bx = np.meshgrid(ys // scale, xs // scale, indexing="ij")
        by, bx = np.unique(np.stack([by.ravel(), bx.ravel()]), axis=1)
        if by.size > 20_000:
            pick = rng.choice(by.size, 20_000, replace=False)
            by, bx = by[pick], bx[pick]
        classes = index._classes(area, by, bx, scale)
        seen.update(classes.tolist())
        step = 0.125 * scale
        # points on each box: a grid over it, its edges and corners included
        t = np.linspace(0.0, 1.0, 9)
        u, v = np.meshgrid(t, t)
        for k in (INSIDE, OUTSIDE):
            sel = np.flatnonzero(classes == k)[:400]
            for y, x in zip(by[sel], bx[sel], strict=True):
                plat = (y + u.ravel()) * step
                plon = (x + v.ravel()) * step
                dist = distances_km(lat, -100.0, plat, plon)
                if k == INSIDE:
                    assert (dist <= radius_km).all(), (scale, y, x)
                else:
                    assert (dist > radius_km).all(), (scale, y, x)
    assert INSIDE in seen or radius_km < 50  # a 0.125 deg cell is ~14 km wide
    assert BOUNDARY in seen and OUTSIDE in seen


def test_many_circles_match_exactly() -> None:
    """100 circles of mixed sizes: match() returns exactly the sockets within some circle."""
    rng = random.Random(11)
    index: SocketIndex[Point] = SocketIndex(0.125)
    points = [Point(rng.uniform(24, 50), rng.uniform(-125, -66)) for _ in range(40_000)]
    for p in points:
        index.add(p)
    circles = tuple(
        Circle(lat=rng.uniform(25, 49), lon=rng.uniform(-124, -67), radius_km=r)
        for r in [rng.choice([0.1, 5.0, 60.0, 400.0]) for _ in range(100)]
    )
    area = Area(None, circles)
    got = flat(index.match(area, [], {}))
    want = {p for p in points if area.contains(p.lat or 0.0, p.lon or 0.0)}
    assert got == want
    assert want  # the test means something


def test_scattered_tiny_circles_take_only_cells_near_them() -> None:
    """Circles at the four corners of the US: cells between them are not even classified."""
    index: SocketIndex[Point] = SocketIndex(0.125)
    corners = [(48.9, -124.6), (48.9, -67.1), (25.2, -80.5), (32.6, -117.1)]
    inside = [Point(lat, lon) for lat, lon in corners]
    middle = [Point(38.0 + i * 0.2, -98.0) for i in range(20)]
    for p in inside + middle:
        index.add(p)
    area = Area(None, tuple(Circle(lat=a, lon=o, radius_km=0.1) for a, o in corners))
    classes: dict[tuple[int, int], int] = {}
    assert flat(index.match(area, [], classes)) == set(inside)
    assert all(p.cell not in classes for p in middle)
