"""Where the sockets are: a grid of buckets of point-tagged sockets, and county buckets.

Pure bookkeeping, no I/O. Matching an area: cells wholly inside the area's polygons
are taken without testing a point; cells on the boundary are tested exactly
(vectorised); cells outside are skipped. County-tagged sockets are matched by county.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Generic, Protocol, TypeVar

import numpy as np

from amber_relay.geo import Area

__all__ = ["Located", "SocketIndex"]

Cell = tuple[int, int]

# Boundary cells with fewer sockets than this are tested one point at a time; numpy's
# per-call overhead only pays for itself above it.
_VECTOR_MIN = 24


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

    def match(self, area: Area, regions: Iterable[str], inside_cells: dict[Cell, bool]) -> list[S]:
        """Every socket inside ``area``, exactly.

        ``regions`` are the county codes the area touches (for county-tagged sockets);
        ``inside_cells`` is the caller's per-area cache of "is this cell wholly inside"
        so repeated matches of one alert classify each cell once.
        """
        out: list[S] = []
        d = self.cell_deg
        for cell in self._cells_in(area.bbox):
            bucket = self.cells[cell]
            inside = inside_cells.get(cell)
            if inside is None:
                y, x = cell
                inside = area.covers_box(x * d, y * d, (x + 1) * d, (y + 1) * d)
                inside_cells[cell] = inside
            if inside:
                out.extend(bucket)
            elif len(bucket) < _VECTOR_MIN:
                contains = area.contains
                out.extend(s for s in bucket if contains(s.lat, s.lon))  # type: ignore[arg-type]
            else:
                socks = list(bucket)
                lats = np.fromiter((s.lat for s in socks), dtype=np.float64, count=len(socks))
                lons = np.fromiter((s.lon for s in socks), dtype=np.float64, count=len(socks))
                hit = area.contains_many(lats, lons)
                out.extend(s for s, h in zip(socks, hit.tolist(), strict=True) if h)
        for region in regions:
            bucket_r = self.regions.get(region)
            if bucket_r:
                out.extend(bucket_r)
        return out
