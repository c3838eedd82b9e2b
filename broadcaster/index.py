"""Where the sockets are: a grid of buckets of point-tagged sockets, and county buckets.

Pure bookkeeping, no I/O. Matching an area: cells wholly inside the area's polygons
are taken without testing a point; the sockets of every cell on the boundary are
tested exactly, in one vectorised call; cells wholly outside are skipped. Cells are
classified once per alert version, all at once (vectorised shapely). County-tagged
sockets are matched by county.

A cell keeps its sockets in a list with their coordinates in parallel ``array('d')``
columns (a socket knows its ``slot``; removal swaps the last one in), so taking a
whole cell is a list copy and testing a boundary cell reads its coordinates as
numpy views, with no per-socket Python work.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Collection, Iterable
from itertools import compress
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
import numpy.typing as npt
import shapely

from amber_relay.geo import EARTH_RADIUS_KM, Area, distances_km

__all__ = ["BOUNDARY", "INSIDE", "OUTSIDE", "Located", "SocketIndex"]

Cell = tuple[int, int]

# A cell's class for one area.
INSIDE, BOUNDARY, OUTSIDE = 1, 0, -1
# Cell boxes are widened by this (degrees, ~0.1 mm) before classifying: a point whose
# floor(lat / cell_deg) rounds into a cell may lie an ulp outside its exact box.
_EPS_DEG = 1e-9
# Sizes (in cells per side) of the boxes classified, coarse to fine.
_LEVELS = (16, 4, 1)


class Located(Protocol):
    """What the index needs of a socket: its tag and the cell it was filed under."""

    lat: float | None
    lon: float | None
    region: str | None
    cell: Cell | None
    slot: int
    """Position in its cell's list (maintained by the index)."""


S = TypeVar("S", bound=Located)


class _Bucket(Generic[S]):
    __slots__ = ("lats", "lons", "socks")

    def __init__(self) -> None:
        self.socks: list[S] = []
        self.lats = array("d")
        self.lons = array("d")


class SocketIndex(Generic[S]):
    """Sockets bucketed by grid cell (lat/lon) or by county (region)."""

    def __init__(self, cell_deg: float) -> None:
        self.cell_deg = cell_deg
        self.cells: dict[Cell, _Bucket[S]] = {}
        self.regions: dict[str, set[S]] = {}

    def __len__(self) -> int:
        return sum(len(b.socks) for b in self.cells.values()) + sum(
            len(s) for s in self.regions.values()
        )

    def cell_of(self, lat: float, lon: float) -> Cell:
        return (math.floor(lat / self.cell_deg), math.floor(lon / self.cell_deg))

    def add(self, sock: S) -> None:
        """File a socket by its current tag (call after setting lat/lon or region)."""
        if sock.region is not None:
            sock.cell = None
            self.regions.setdefault(sock.region, set()).add(sock)
        elif sock.lat is not None and sock.lon is not None:
            cell = self.cell_of(sock.lat, sock.lon)
            bucket = self.cells.get(cell)
            if bucket is None:
                bucket = self.cells[cell] = _Bucket()
            sock.cell = cell
            sock.slot = len(bucket.socks)
            bucket.socks.append(sock)
            bucket.lats.append(sock.lat)
            bucket.lons.append(sock.lon)

    def remove(self, sock: S) -> None:
        """Unfile a socket (before re-tagging it, or when it closes). Idempotent."""
        if sock.cell is not None:
            bucket = self.cells.get(sock.cell)
            if bucket is not None:
                i, last = sock.slot, len(bucket.socks) - 1
                if i != last:  # swap the last socket into the freed slot
                    moved = bucket.socks[last]
                    bucket.socks[i] = moved
                    bucket.lats[i] = bucket.lats[last]
                    bucket.lons[i] = bucket.lons[last]
                    moved.slot = i
                bucket.socks.pop()
                bucket.lats.pop()
                bucket.lons.pop()
                if not bucket.socks:
                    del self.cells[sock.cell]
            sock.cell = None
        elif sock.region is not None:
            bucket_r = self.regions.get(sock.region)
            if bucket_r is not None:
                bucket_r.discard(sock)
                if not bucket_r:
                    del self.regions[sock.region]

    def _cells_in(
        self, bbox: tuple[float, float, float, float], cells: Collection[Cell] | None = None
    ) -> list[Cell]:
        min_lon, min_lat, max_lon, max_lat = bbox
        d = self.cell_deg
        y0, y1 = math.floor(min_lat / d), math.floor(max_lat / d)
        x0, x1 = math.floor(min_lon / d), math.floor(max_lon / d)
        if cells is None:
            cells = self.cells
        if (y1 - y0 + 1) * (x1 - x0 + 1) <= len(cells):
            return [(y, x) for y in range(y0, y1 + 1) for x in range(x0, x1 + 1) if (y, x) in cells]
        return [c for c in cells if y0 <= c[0] <= y1 and x0 <= c[1] <= x1]

    def _cells_near(self, area: Area, cells: Collection[Cell] | None = None) -> list[Cell]:
        """Cells (of ``cells``, default the occupied ones) in the area's box; for
        scattered parts, only those in a part's box.

        100 tiny circles at the corners of the US have a box over the whole country:
        taking (and classifying) every cell in it would cost ~0.4 s at 300,000 sockets.
        """
        parts = list(area.circle_boxes)
        if area.polygons is not None:
            parts.append(np.array(area.polygons.bounds))
        if len(parts) < 2:
            return self._cells_in(area.bbox, cells)
        b = np.array(parts)
        part_area = float(np.sum((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])))
        x0, y0, x1, y1 = area.bbox
        if part_area * 4 > (x1 - x0) * (y1 - y0):
            return self._cells_in(area.bbox, cells)  # overlapping parts: one pass is cheaper
        found: set[Cell] = set()
        for box in parts:
            found.update(self._cells_in((box[0], box[1], box[2], box[3]), cells))
        return list(found)

    def classify_near(self, area: Area, occupied: Iterable[Cell]) -> dict[Cell, int]:
        """The classes of the cells of ``occupied`` that :meth:`match` would look at.

        Reads neither the buckets nor any other state of the index but ``cell_deg``:
        safe in a worker thread with a snapshot of the occupied cells taken on the loop
        (``list(index.cells)``). The result is a valid ``inside_cells`` for ``match``
        whatever the index holds by then: a cell's class depends on the area alone, and
        ``match`` classifies cells occupied since the snapshot itself.
        """
        return self.classify(area, self._cells_near(area, set(occupied)))

    def match(
        self, area: Area, regions: Iterable[str], inside_cells: dict[Cell, int]
    ) -> list[list[S]]:
        """Every socket inside ``area``, exactly, as a list of chunks.

        Whole cells come back as the index's own lists (no per-socket work, which at a
        million sockets is what costs: touching each object); boundary cells as one
        list of the sockets that passed the exact test. The chunks are valid until the
        index next changes: iterate them before yielding to the event loop.

        ``regions`` are the county codes the area touches (for county-tagged sockets);
        ``inside_cells`` is the caller's per-area cache of cell classes (INSIDE,
        BOUNDARY, OUTSIDE) so repeated matches of one alert classify each cell once.
        """
        found = self._cells_near(area)
        unknown = [c for c in found if c not in inside_cells]
        if unknown:
            self._classify(area, unknown, inside_cells)
        cells = self.cells
        classes = [inside_cells[c] for c in found]
        out = [cells[c].socks for c, k in zip(found, classes, strict=True) if k == INSIDE]
        d, eps = self.cell_deg, _EPS_DEG
        for (y, x), k in zip(found, classes, strict=True):
            if k != BOUNDARY:
                continue
            # One vectorised test per boundary cell, against the area clipped to the
            # cell (cached in the area): with 1:500k outlines a point test against a
            # whole state costs with the hundreds of edges its row crosses. The
            # coordinates are read without Python objects; the views die with the call.
            b = cells[(y, x)]
            hit = area.contains_in_box(
                (x * d - eps, y * d - eps, (x + 1) * d + eps, (y + 1) * d + eps),
                np.frombuffer(b.lats, dtype=np.float64),
                np.frombuffer(b.lons, dtype=np.float64),
            )
            out.append(list(compress(b.socks, hit.tolist())))
        for region in regions:
            bucket_r = self.regions.get(region)
            if bucket_r:
                out.append(list(bucket_r))
        return out

    def classify(self, area: Area, cells: list[Cell]) -> dict[Cell, int]:
        """INSIDE, BOUNDARY or OUTSIDE for each cell of this grid (occupied or not)."""
        into: dict[Cell, int] = {}
        if cells:
            self._classify(area, cells, into)
        return into

    def _classify(self, area: Area, cells: list[Cell], into: dict[Cell, int]) -> None:
        # Coarse to fine: cells under a box wholly inside or outside the area take its
        # class; only those under a boundary box go down a level. For a state this
        # tests a small fraction of the cells (the shapely predicates are the cost),
        # and the bookkeeping stays in numpy.
        n = len(cells)
        ys = np.fromiter((c[0] for c in cells), dtype=np.int64, count=n)
        xs = np.fromiter((c[1] for c in cells), dtype=np.int64, count=n)
        result = np.full(n, BOUNDARY, dtype=np.int64)
        todo = np.arange(n)
        for scale in _LEVELS:
            by, bx = ys[todo] // scale, xs[todo] // scale
            # One integer key per box, so np.unique sorts a flat array, not rows.
            x_min = int(bx.min())
            width = int(bx.max()) - x_min + 1
            keys, inverse = np.unique(by * width + (bx - x_min), return_inverse=True)
            box_y, box_x = np.divmod(keys, width)
            classes = self._classes(area, box_y, box_x + x_min, scale)[inverse.ravel()]
            if scale == 1:
                result[todo] = classes
                break
            settled = classes != BOUNDARY
            result[todo[settled]] = classes[settled]
            todo = todo[~settled]
            if todo.size == 0:
                break
        into.update(zip(cells, result.tolist(), strict=True))

    def _classes(
        self, area: Area, ys: npt.NDArray[np.int64], xs: npt.NDArray[np.int64], scale: int
    ) -> npt.NDArray[np.int64]:
        """INSIDE / BOUNDARY / OUTSIDE of boxes ``scale`` cells wide at (ys, xs)."""
        d = self.cell_deg * scale
        x0, y0 = xs * d - _EPS_DEG, ys * d - _EPS_DEG
        x1, y1 = (xs + 1) * d + _EPS_DEG, (ys + 1) * d + _EPS_DEG
        if area.polygons is not None:
            boxes = shapely.box(x0, y0, x1, y1)
            touch = shapely.intersects(area.polygons, boxes)
            inside = np.zeros(len(ys), dtype=bool)
            if touch.any():  # only a box that meets the area can lie inside it
                inside[touch] = shapely.contains(area.polygons, boxes[touch])
        else:
            inside, touch = np.zeros(len(ys), dtype=bool), np.zeros(len(ys), dtype=bool)
        if len(area.circles):
            self._circle_classes(area, d, x0, y0, x1, y1, touch, inside)
        classes: npt.NDArray[np.int64] = np.where(
            inside, INSIDE, np.where(touch, BOUNDARY, OUTSIDE)
        )
        return classes

    @staticmethod
    def _circle_classes(
        area: Area,
        d: float,
        x0: npt.NDArray[np.floating[Any]],
        y0: npt.NDArray[np.floating[Any]],
        x1: npt.NDArray[np.floating[Any]],
        y1: npt.NDArray[np.floating[Any]],
        touch: npt.NDArray[np.bool_],
        inside: npt.NDArray[np.bool_],
    ) -> None:
        """Mark (in place) boxes that may meet a circle, and boxes wholly inside one.

        A box is inside the circle when its four corners are within the radius less a
        margin: its meridian edges are great-circle arcs (the cap is convex), and its
        parallel edges stray from the great circle through their ends by at most
        R * (half-width in radians)^2 / 4. So a large circle's cells are taken whole
        like a polygon's instead of testing every socket in it against every circle.
        """
        margin_km = EARTH_RADIUS_KM * math.radians(d / 2) ** 2 / 4 + 0.001
        mid_x, mid_y = (x0 + x1) / 2, (y0 + y1) / 2
        # Farthest a box point lies from the box's centre: a corner (of the wider,
        # equatorward side), plus the parallel edges' bulge.
        far = np.maximum(distances_km(mid_y, mid_x, y0, x0), distances_km(mid_y, mid_x, y1, x0))
        reach_box = far + margin_km
        for box, (lat, lon, radius_km) in zip(area.circle_boxes, area.circle_centres, strict=True):
            cand = np.flatnonzero((x0 <= box[2]) & (box[0] <= x1) & (y0 <= box[3]) & (box[1] <= y1))
            if not cand.size:
                continue
            # A box whose every point is farther than the radius (triangle inequality
            # from its centre) stays OUTSIDE: a circle's box is 27 % larger than it.
            centre_km = distances_km(lat, lon, mid_y[cand], mid_x[cand])
            cand = cand[centre_km - reach_box[cand] <= radius_km]
            touch[cand] = True
            reach = radius_km - margin_km
            cand = cand[~inside[cand]]
            if reach <= 0 or not cand.size:
                continue
            ok = np.ones(cand.size, dtype=bool)
            for xs, ys in ((x0, y0), (x0, y1), (x1, y0), (x1, y1)):
                ok &= distances_km(lat, lon, ys[cand], xs[cand]) <= reach
            inside[cand[ok]] = True
