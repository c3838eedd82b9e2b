"""Where the sockets are: a grid of buckets of point-tagged sockets, and county buckets.

Pure bookkeeping, no I/O. Matching an area: cells wholly inside the area's polygons
are taken without testing a point; the sockets of every cell on the boundary are
tested exactly, in one vectorised call; cells wholly outside are skipped. Cells are
classified once per alert version, all at once (vectorised shapely). County-tagged
sockets are matched by county.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from itertools import compress
from operator import attrgetter
from typing import Generic, Protocol, TypeVar

import numpy as np
import shapely

from amber_relay.geo import Area, circle_bbox

__all__ = ["BOUNDARY", "INSIDE", "OUTSIDE", "Located", "SocketIndex"]

Cell = tuple[int, int]

# A cell's class for one area.
INSIDE, BOUNDARY, OUTSIDE = 1, 0, -1
# Cell boxes are widened by this (degrees, ~0.1 mm) before classifying: a point whose
# floor(lat / cell_deg) rounds into a cell may lie an ulp outside its exact box.
_EPS_DEG = 1e-9

_get_lat = attrgetter("lat")
_get_lon = attrgetter("lon")


class Located(Protocol):
    """What the index needs of a socket: its tag and the cell it was filed under."""

    lat: float | None
    lon: float | None
    region: str | None
    cell: Cell | None


S = TypeVar("S", bound=Located)


class SocketIndex(Generic[S]):
    """Sockets bucketed by grid cell (lat/lon) or by county (region)."""

    def __init__(self, cell_deg: float) -> None:
        self.cell_deg = cell_deg
        self.cells: dict[Cell, set[S]] = {}
        self.regions: dict[str, set[S]] = {}

    def __len__(self) -> int:
        return sum(len(s) for s in self.cells.values()) + sum(len(s) for s in self.regions.values())

    def cell_of(self, lat: float, lon: float) -> Cell:
        return (math.floor(lat / self.cell_deg), math.floor(lon / self.cell_deg))

    def add(self, sock: S) -> None:
        """File a socket by its current tag (call after setting lat/lon or region)."""
        if sock.region is not None:
            sock.cell = None
            self.regions.setdefault(sock.region, set()).add(sock)
        elif sock.lat is not None and sock.lon is not None:
            cell = self.cell_of(sock.lat, sock.lon)
            sock.cell = cell
            self.cells.setdefault(cell, set()).add(sock)

    def remove(self, sock: S) -> None:
        """Unfile a socket (before re-tagging it, or when it closes). Idempotent."""
        if sock.cell is not None:
            bucket = self.cells.get(sock.cell)
            if bucket is not None:
                bucket.discard(sock)
                if not bucket:
                    del self.cells[sock.cell]
            sock.cell = None
        elif sock.region is not None:
            bucket = self.regions.get(sock.region)
            if bucket is not None:
                bucket.discard(sock)
                if not bucket:
                    del self.regions[sock.region]

    def _cells_in(self, bbox: tuple[float, float, float, float]) -> Iterator[Cell]:
        min_lon, min_lat, max_lon, max_lat = bbox
        d = self.cell_deg
        y0, y1 = math.floor(min_lat / d), math.floor(max_lat / d)
        x0, x1 = math.floor(min_lon / d), math.floor(max_lon / d)
        span = (y1 - y0 + 1) * (x1 - x0 + 1)
        if span <= len(self.cells):
            for y in range(y0, y1 + 1):
                for x in range(x0, x1 + 1):
                    if (y, x) in self.cells:
                        yield (y, x)
        else:
            for cell in self.cells:
                if y0 <= cell[0] <= y1 and x0 <= cell[1] <= x1:
                    yield cell

    def match(self, area: Area, regions: Iterable[str], inside_cells: dict[Cell, int]) -> list[S]:
        """Every socket inside ``area``, exactly.

        ``regions`` are the county codes the area touches (for county-tagged sockets);
        ``inside_cells`` is the caller's per-area cache of cell classes (INSIDE,
        BOUNDARY, OUTSIDE) so repeated matches of one alert classify each cell once.
        """
        found = list(self._cells_in(area.bbox))
        unknown = [c for c in found if c not in inside_cells]
        if unknown:
            self._classify(area, unknown, inside_cells)
        out: list[S] = []
        edge: list[S] = []
        cells = self.cells
        for cell in found:
            k = inside_cells[cell]
            if k == INSIDE:
                out.extend(cells[cell])
            elif k == BOUNDARY:
                edge.extend(cells[cell])
        if edge:
            # One vectorised test for all boundary sockets: numpy/shapely's per-call
            # cost is paid once, and attrgetter keeps the extraction in C.
            n = len(edge)
            lats = np.fromiter(map(_get_lat, edge), dtype=np.float64, count=n)
            lons = np.fromiter(map(_get_lon, edge), dtype=np.float64, count=n)
            out.extend(compress(edge, area.contains_many(lats, lons).tolist()))
        for region in regions:
            bucket_r = self.regions.get(region)
            if bucket_r:
                out.extend(bucket_r)
        return out

    def _classify(self, area: Area, cells: list[Cell], into: dict[Cell, int]) -> None:
        d = self.cell_deg
        ys = np.fromiter((c[0] for c in cells), dtype=np.float64, count=len(cells))
        xs = np.fromiter((c[1] for c in cells), dtype=np.float64, count=len(cells))
        x0, y0 = xs * d - _EPS_DEG, ys * d - _EPS_DEG
        x1, y1 = (xs + 1) * d + _EPS_DEG, (ys + 1) * d + _EPS_DEG
        if area.polygons is not None:
            boxes = shapely.box(x0, y0, x1, y1)
            inside = shapely.contains(area.polygons, boxes)
            touch = shapely.intersects(area.polygons, boxes)
        else:
            inside = touch = np.zeros(len(cells), dtype=bool)
        for c in area.circles:
            # Circles never make a cell INSIDE; a cell meeting a circle's (conservative)
            # box is BOUNDARY, so its points get the exact haversine test.
            bx0, by0, bx1, by1 = circle_bbox(c)
            touch = touch | ((x0 <= bx1) & (bx0 <= x1) & (y0 <= by1) & (by0 <= y1))
        classes = np.where(inside, INSIDE, np.where(touch, BOUNDARY, OUTSIDE))
        into.update(zip(cells, classes.tolist(), strict=True))
