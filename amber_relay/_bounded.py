"""Validity and repair of agency polygons at a cost bounded before any GEOS call.

GEOS's validity check, repair (``make_valid``) and unions are fast for ordinary
polygons but quadratic or worse in two measures of a drawing: how many pairs of
edges have overlapping bounding boxes (a "sun" of thousands of thin spikes: 20,000
vertices cost 1 CPU-second to check and 5 to repair although the ring never crosses
itself) and how many times edges cross (a 3,000-point star: ~2 M crossings, minutes
and gigabytes in ``make_valid``). Both are counted here first with an R-tree of the
edges, in chunks that stop as soon as a limit is passed, so what the measures cost is
itself bounded; an area over either limit is refused, naming the ring and the first
crossing, before GEOS sees it. Within the limits every later step (validity, one
repair, the union of the parts, county lookups) is cheap: see benchmarks/adversarial.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from .errors import Invalid

__all__ = ["Limits", "check_parts"]

IntArray = npt.NDArray[np.int64]

# Edges queried per R-tree call: one call's answer holds at most this many times the
# number of edges (32 x 20,000 pairs: ~60 MB with their coordinates), whatever the drawing.
_CHUNK = 32
_SLICE = 2000


@dataclass(frozen=True)
class Limits:
    """Bounds on one alert's polygons, all parts together."""

    max_edge_pairs: int
    """Pairs of edges whose bounding boxes overlap (neighbours along a ring excluded)."""
    max_line_crossings: int
    """Edges a horizontal line may cross: what matching a point costs on every
    broadcaster (GEOS's prepared point-in-polygon counts crossings of a ray)."""
    max_crossings: int
    """Edge crossings: edges of one part that meet (self-intersections, touches) plus
    edges of different parts that properly cross (shared borders are free to join)."""


@dataclass(frozen=True)
class _Edges:
    segs: npt.NDArray[np.float64]
    """(n, 2, 2): start and end [lon, lat] of every edge."""
    lines: npt.NDArray[np.object_]
    part: IntArray
    ring: IntArray
    index: IntArray
    """Position of the edge in its ring."""
    last: IntArray
    """Index of the last edge of the edge's ring."""


def _edges(parts: list[Polygon]) -> _Edges:
    starts: list[npt.NDArray[np.float64]] = []
    meta: list[tuple[int, int, int]] = []
    for p, poly in enumerate(parts):
        for r, ring in enumerate([poly.exterior, *poly.interiors]):
            xy = np.asarray(ring.coords, dtype=np.float64)
            # Repeated positions make zero-length edges that would "meet" their
            # second neighbours; they change nothing of the ring, so drop them.
            keep = np.ones(len(xy), dtype=bool)
            keep[1:] = np.any(xy[1:] != xy[:-1], axis=1)
            xy = xy[keep]
            starts.append(np.stack([xy[:-1], xy[1:]], axis=1))
            meta.append((p, r, len(xy) - 1))
    segs = np.concatenate(starts)
    part = np.concatenate([np.full(n, p, dtype=np.int64) for p, _, n in meta])
    ring = np.concatenate([np.full(n, r, dtype=np.int64) for _, r, n in meta])
    index = np.concatenate([np.arange(n, dtype=np.int64) for _, _, n in meta])
    last = np.concatenate([np.full(n, n - 1, dtype=np.int64) for _, _, n in meta])
    # Created in slices: each shapely call holds the GIL, and this runs in a thread
    # beside the serving event loop (20,000 at once: ~15 ms without a switch).
    lines = np.concatenate(
        [shapely.linestrings(segs[i : i + _SLICE]) for i in range(0, len(segs), _SLICE)]
    )
    return _Edges(segs, lines, part, ring, index, last)


def _pairs(edges: _Edges, a: IntArray, b: IntArray) -> tuple[IntArray, IntArray]:
    """The pairs (a < b) that are not one edge twice nor neighbours along a ring."""
    same_ring = (edges.part[a] == edges.part[b]) & (edges.ring[a] == edges.ring[b])
    ia, ib = edges.index[a], edges.index[b]
    neighbours = same_ring & (
        (np.abs(ia - ib) == 1)
        | ((ia == 0) & (ib == edges.last[b]))
        | ((ib == 0) & (ia == edges.last[a]))
    )
    keep = (a < b) & ~neighbours
    return a[keep], b[keep]


def _meet(
    segs: npt.NDArray[np.float64], a: IntArray, b: IntArray, strict: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """Whether edges ``a[i]`` and ``b[i]`` (boxes known to overlap) meet.

    Orientation tests in numpy (~50x faster than GEOS per pair): with overlapping
    boxes, two segments meet iff each one's ends are not strictly on one side of the
    other (collinear ones included). Where ``strict``, only a proper crossing (each
    strictly on both sides of the other) counts: touching or shared edges between
    different parts are what adjacent parts drawn separately have, and cheap to join.
    """
    p1, p2, q1, q2 = segs[a, 0], segs[a, 1], segs[b, 0], segs[b, 1]

    def orient(
        u: npt.NDArray[np.float64], v: npt.NDArray[np.float64], w: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        d: npt.NDArray[np.float64] = (v[:, 0] - u[:, 0]) * (w[:, 1] - u[:, 1]) - (
            v[:, 1] - u[:, 1]
        ) * (w[:, 0] - u[:, 0])
        return np.sign(d)

    sides_q = orient(p1, p2, q1) * orient(p1, p2, q2)
    sides_p = orient(q1, q2, p1) * orient(q1, q2, p2)
    met: npt.NDArray[np.bool_] = np.where(
        strict, (sides_q < 0) & (sides_p < 0), (sides_q <= 0) & (sides_p <= 0)
    )
    return met


def _where(edges: _Edges, labels: list[str], e: int) -> str:
    return f"{labels[int(edges.part[e])]} ring {int(edges.ring[e])} edge {int(edges.index[e])}"


def _crossing_text(edges: _Edges, labels: list[str], a: int, b: int) -> str:
    meet = shapely.get_coordinates(shapely.intersection(edges.lines[a], edges.lines[b]))
    # (rounding can make the orientation test see a touch GEOS does not: use the start)
    lon, lat = (float(v) for v in (meet[0] if len(meet) else edges.segs[a, 0]))
    where = f"[{lon:.6f}, {lat:.6f}]"
    return f"{_where(edges, labels, a)} crosses {_where(edges, labels, b)} at {where}"


def _count(
    edges: _Edges, limits: Limits, labels: list[str]
) -> tuple[int, tuple[int, int] | None, int]:
    """Crossing edge pairs (counted until a limit is passed), the first one, box pairs.

    Raises:
        Invalid: the edges' boxes overlap more than ``max_edge_pairs`` times.
    """
    tree = shapely.STRtree(edges.lines)
    n = len(edges.lines)
    boxes = crossings = 0
    first: tuple[int, int] | None = None
    for start in range(0, n, _CHUNK):
        q = tree.query(edges.lines[start : start + _CHUNK])
        a, b = _pairs(edges, q[0].astype(np.int64) + start, q[1].astype(np.int64))
        if len(a):
            # At most _CHUNK x edges pairs: bounded, and it lets a refusal name a crossing.
            hit = _meet(edges.segs, a, b, edges.part[a] != edges.part[b])
            if hit.any():
                if first is None:
                    k = int(np.argmax(hit))
                    first = (int(a[k]), int(b[k]))
                crossings += int(hit.sum())
        boxes += len(a)
        if crossings > limits.max_crossings:
            break  # refused whatever the rest holds
        if boxes > limits.max_edge_pairs:
            if first is not None:
                break  # refused: naming a crossing says more than "too intricate"
            raise Invalid(
                f"{labels[int(edges.part[start])] if len(labels) == 1 else 'area.geometry'}"
                f" is too intricate to check: more than {limits.max_edge_pairs} pairs of its"
                " edges have overlapping extents (long thin spikes or many parts stacked on"
                " each other); simplify it or use circles or SAME codes",
                code="too_intricate",
            )
    return crossings, first, boxes


def _line_depth(segs: npt.NDArray[np.float64]) -> tuple[int, float]:
    """Most edges one horizontal line crosses, and a latitude where it does."""
    y0 = np.minimum(segs[:, 0, 1], segs[:, 1, 1])
    y1 = np.maximum(segs[:, 0, 1], segs[:, 1, 1])
    keep = y1 > y0
    ys = np.concatenate([y0[keep], y1[keep]])
    step = np.concatenate([np.ones(int(keep.sum())), -np.ones(int(keep.sum()))])
    if not ys.size:
        return 0, 0.0
    order = np.lexsort((step, ys))  # at a tie an edge ends before the next begins
    depth = np.cumsum(step[order])
    k = int(np.argmax(depth))
    return int(depth[k]), float(ys[order][k])


def check_parts(
    parts: list[tuple[str, Polygon]], limits: Limits
) -> list[tuple[str, BaseGeometry, str | None]]:
    """Each part valid (repaired if it was not), with the reason it was invalid.

    Cost is bounded by ``limits`` whatever the drawing: see the module docstring.

    Raises:
        Invalid: the parts are too intricate, or cross more than ``max_crossings``
            times (the message names the first crossing's part, ring, edges and place),
            or a repaired part encloses no area.
    """
    if not parts:
        return []
    labels = [label for label, _ in parts]
    edges = _edges([p for _, p in parts])
    crossings, first, boxes = _count(edges, limits, labels)
    too_many = crossings > limits.max_crossings or boxes > limits.max_edge_pairs
    if too_many and first is not None:
        raise Invalid(
            f"{_crossing_text(edges, labels, *first)}; the area's edges cross too many"
            f" times to repair (limits: {limits.max_crossings} crossings,"
            f" {limits.max_edge_pairs} pairs of edges with overlapping extents): redraw"
            " it without crossing edges",
            code="self_intersection",
        )
    depth, lat = _line_depth(edges.segs)
    if depth > limits.max_line_crossings:
        raise Invalid(
            f"{labels[0] if len(labels) == 1 else 'area.geometry'} is too intricate to match"
            f" points against: the line of latitude {lat:.6f} crosses {depth} of its edges"
            f" (limit {limits.max_line_crossings}); simplify it or use circles or SAME codes",
            code="too_intricate",
        )
    out: list[tuple[str, BaseGeometry, str | None]] = []
    for label, poly in parts:
        if poly.is_valid:
            out.append((label, poly, None))
            continue
        reason = str(shapely.is_valid_reason(poly))
        fixed = shapely.make_valid(poly, method="structure", keep_collapsed=False)
        if fixed.geom_type == "GeometryCollection":
            fixed = shapely.union_all(
                [g for g in fixed.geoms if g.geom_type in ("Polygon", "MultiPolygon")]
            )
        if fixed.is_empty or fixed.area == 0:
            raise Invalid(f"{label}: encloses no area", code="invalid_geometry")
        out.append((label, fixed, reason))
    return out
