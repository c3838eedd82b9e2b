"""Preview reach from coarse per-cell counts: never below the truth, exact for inside cells."""

from __future__ import annotations

import random

import shapely

from amber_relay import geodata
from amber_relay.geo import Area
from amber_relay.model import Circle
from broadcaster.hub import Hub
from broadcaster.reach import Snapshot, cells_of, count_inside, snapshot_of
from tests.broadcaster.test_index import Point

GRID = 0.125


class Sock(Point):
    """A point-tagged socket as the hub files it (never sent anything here)."""

    def send(self, data: bytes) -> bool:
        return True


def hub_with(points: list[Sock], regions: dict[str, int]) -> Hub:
    hub = Hub(geodata.load(), cell_deg=GRID)
    for p in points:
        hub.index.add(p)
    for fips, n in regions.items():
        for _ in range(n):
            r = Sock(0.0, 0.0)
            r.lat = r.lon = None
            r.region = fips
            hub.index.add(r)
    return hub


def test_snapshot_holds_counts_per_cell_and_county_only() -> None:
    """A snapshot is cell -> count and county -> count: no coordinates of any socket."""
    pts = [Sock(29.42, -98.49), Sock(29.43, -98.48), Sock(30.27, -97.74)]
    snap = snapshot_of(hub_with(pts, {"48029": 2}), "node-a", 1000.0)
    assert sorted(cells_of(snap)[:, 2].tolist()) == [1, 2]
    assert snap.regions == {"48029": 2}
    assert snap.cell_deg == GRID and snap.node == "node-a" and snap.t == 1000.0


def test_reach_is_never_below_the_true_count_and_exact_inside() -> None:
    """Random points and areas: the count is >= the exact match, and equal when no
    point lies in a cell the area's boundary crosses."""
    rng = random.Random(11)
    bexar = geodata.load().counties["48029"]
    for trial in range(40):
        pts = [Sock(rng.uniform(28.5, 30.5), rng.uniform(-99.5, -97.5)) for _ in range(400)]
        snaps = [
            snapshot_of(hub_with(pts[:200], {}), "a", 0.0),
            snapshot_of(hub_with(pts[200:], {}), "b", 0.0),
        ]
        if trial % 2:
            area = Area(bexar)
        else:
            area = Area(None, (Circle(lat=29.5, lon=-98.5, radius_km=rng.uniform(5, 60)),))
        truth = sum(
            area.contains(p.lat, p.lon) for p in pts if p.lat is not None and p.lon is not None
        )
        got = count_inside(area, [], snaps)
        assert got >= truth
    # points only in cells wholly inside Bexar: exact
    pts = []
    for _ in range(20_000):  # bounded: about a third of the draws land in such cells
        lat, lon = rng.uniform(29.1, 29.8), rng.uniform(-98.9, -98.1)
        y, x = lat // GRID, lon // GRID
        if bexar.contains(shapely.box(x * GRID, y * GRID, (x + 1) * GRID, (y + 1) * GRID)):
            pts.append(Sock(lat, lon))
        if len(pts) == 100:
            break
    assert len(pts) == 100
    assert count_inside(Area(bexar), [], [snapshot_of(hub_with(pts, {}), "a", 0.0)]) == 100


def test_county_tags_count_when_their_county_is_touched() -> None:
    """County-tagged sockets count by region, as the hub sends them the alert."""
    snap = Snapshot(node="a", t=0.0, cell_deg=GRID, cells=b"", regions={"48029": 3, "48453": 5})
    area = Area(geodata.load().counties["48029"])
    assert count_inside(area, ["48029", "48013"], [snap]) == 3
