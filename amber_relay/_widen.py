"""Widen a lon/lat geometry outward by a distance in metres (pure geometry).

A buffer in degrees is not a distance: a degree of longitude is 111 km at the equator
and 38 km at 70 N. Here the geometry is cut into latitude bands narrow enough that the
length of a degree of longitude varies by at most :data:`BAND_RATIO` within a band; each
band is scaled to a plane where one unit is a degree of latitude (x = lon * cos(lat_ref),
lat_ref the band's highest |lat| plus the buffer) and buffered there; the bands' buffers
are united. Bounds, on the WGS84 ellipsoid:

- every point within ``metres`` of the geometry is inside the result (the metres per
  degree used are the ellipsoid's least; the buffer's round joins are chords with their
  vertices on the circle, so at least ``cos(pi / (4 * QUAD_SEGS))`` = 99.5 % of the
  distance is reached between vertices: callers needing exactly ``metres`` pass a bit
  more, see :func:`widen`);
- no point of the result is more than ``metres * OVERSHOOT`` from the geometry.

The buffer's round joins multiply the vertices (2.5 x for a state outline), so the
result is buffered :data:`SLACK_M` further and then simplified by as much
(:func:`simplify_m`), which takes back most of them: the bounds become ``metres`` and
``(metres + SLACK_M) * OVERSHOOT + SLACK_M``.
"""

from __future__ import annotations

import math

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

__all__ = [
    "BAND_RATIO",
    "M_PER_DEG_MAX",
    "M_PER_DEG_MIN",
    "OVERSHOOT",
    "QUAD_SEGS",
    "SLACK_M",
    "simplify_m",
    "widen",
]

M_PER_DEG_MIN = 110_574.0
"""Fewest metres in a degree of latitude (at the equator, WGS84), and a lower bound of
metres per degree of longitude divided by cos(lat) (111,319.5 at the equator)."""
M_PER_DEG_MAX = 111_700.0
"""Most metres in a degree of latitude (111,694 at the poles) or of longitude / cos(lat)."""
BAND_RATIO = 1.02
"""Widest spread of cos(lat) within one band (ratio of its largest to its smallest)."""
QUAD_SEGS = 8
"""Segments per quarter circle in the buffer's round joins."""
_CHORD = math.cos(math.pi / (4 * QUAD_SEGS))
OVERSHOOT = BAND_RATIO * M_PER_DEG_MAX / M_PER_DEG_MIN / _CHORD
"""Upper bound of (farthest point of the buffer from the geometry) / metres: 1.035."""
SLACK_M = 5.0
"""Extra buffer taken back by simplification (see the module docstring)."""


def simplify_m(geom: BaseGeometry, tolerance_m: float) -> BaseGeometry:
    """Douglas-Peucker (topology preserving) with a tolerance in metres on the ground.

    Done in a plane x = lon * cos(lowest |lat| of ``geom``), y = lat, with the tolerance
    in degrees of latitude at their longest (M_PER_DEG_MAX): a unit there is at least as
    long as on the ground everywhere in ``geom``, so every dropped vertex is within
    ``tolerance_m`` of the result, and the result within ``tolerance_m`` of ``geom``.
    """
    miny, maxy = geom.bounds[1], geom.bounds[3]
    low = 0.0 if miny < 0.0 < maxy else min(abs(miny), abs(maxy))
    k = np.array([math.cos(math.radians(low)), 1.0])
    flat = shapely.transform(geom, lambda xy: xy * k)
    # GEOS gets half the tolerance: after simplifying a ring it also drops the ring's
    # start point when that is within tolerance of its neighbours' chord, and the points
    # dropped before next to it may then lie up to twice the tolerance away (measured:
    # 49 m for a 30 m tolerance on Reagan County, TX).
    simple = shapely.simplify(flat, tolerance_m / 2 / M_PER_DEG_MAX, preserve_topology=True)
    return shapely.transform(simple, lambda xy: xy / k)


def _bands(miny: float, maxy: float) -> list[tuple[float, float]]:
    """Latitude bands covering [miny, maxy], each with cos(lat) within BAND_RATIO."""
    if miny < 0.0 < maxy:
        return _bands(miny, 0.0) + _bands(0.0, maxy)
    south = maxy <= 0.0
    lo, hi = (-maxy, -miny) if south else (miny, maxy)  # |lat| range
    edges = [lo]
    while edges[-1] < hi:
        c = math.cos(math.radians(edges[-1])) / BAND_RATIO
        nxt = math.degrees(math.acos(c)) if c > 0.02 else 90.0
        edges.append(min(hi, max(nxt, edges[-1] + 1e-6)))
    out = list(zip(edges, edges[1:], strict=False)) or [(lo, hi)]
    return [(-b, -a) for a, b in out] if south else out


def widen(geom: BaseGeometry, metres: float) -> BaseGeometry:
    """``geom`` (lon/lat degrees) buffered outward so that everything within ``metres``
    of it is inside, and nothing farther than ``metres * OVERSHOOT``.

    Takes milliseconds for a county, ~0.1 s for Texas and seconds for Alaska (230,000
    vertices over 20 degrees of latitude). ``metres <= 0`` returns
    ``geom`` itself; so does an empty one.
    """
    if metres <= 0.0 or geom.is_empty:
        return geom
    return _buffer(geom, metres + SLACK_M)


def _buffer(geom: BaseGeometry, metres: float) -> BaseGeometry:
    """The banded buffer, each band's piece simplified by SLACK_M before the union."""
    # Divided by the chord factor so that even between the join vertices the full
    # distance is reached.
    d = metres / M_PER_DEG_MIN / _CHORD
    minx, miny, maxx, maxy = geom.bounds
    bands = _bands(miny, maxy)
    pieces = []
    for lo, hi in bands:
        part = geom
        if len(bands) > 1:
            # clip_by_rect is ~10 x faster than an intersection but may return an
            # invalid polygon (which buffer would misread): repaired then.
            part = shapely.clip_by_rect(geom, minx - 1.0, lo, maxx + 1.0, hi)
            if part.is_empty:
                continue
            if not part.is_valid:
                part = shapely.make_valid(part, method="structure", keep_collapsed=False)
        ref = min(89.0, max(abs(lo), abs(hi)) + d)
        k = math.cos(math.radians(ref))
        scale = np.array([k, 1.0])
        flat = shapely.transform(part, lambda xy, s=scale: xy * s)
        grown = shapely.transform(
            shapely.buffer(flat, d, quad_segs=QUAD_SEGS), lambda xy, s=scale: xy / s
        )
        pieces.append(simplify_m(grown, SLACK_M))
    if len(pieces) == 1:
        return pieces[0]
    return shapely.union_all(pieces)
