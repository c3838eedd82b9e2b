"""Rings across the 180th meridian (RFC 7946 §3.1.9), and geometry wrapped back into
[-180, 180].

RFC 7946 asks that a geometry crossing the antimeridian be cut in two. Senders often
draw the ring straight across instead (``[179, 52] -> [-179, 52]``): read literally that
edge runs 358° the other way, and the ring becomes a band around the world. A jump of
more than 180° between consecutive positions is read the short way, across 180°; the
ring is unwrapped to continuous longitudes, and the polygon cut at ±180 into parts that
each lie within [-180, 180].
"""

from __future__ import annotations

from collections.abc import Sequence

import shapely
from shapely.geometry.base import BaseGeometry

from .errors import Invalid

__all__ = ["crosses", "unwrap_rings", "wrap_to_world"]

# Cut windows: [-540, -180] and [180, 540] hold what an unwrapped ring or a buffered
# outline puts past the meridian; each is shifted back by 360°.
_WINDOWS = ((-540.0, 360.0), (-180.0, 0.0), (180.0, -360.0))


def crosses(rings: Sequence[Sequence[Sequence[float]]]) -> bool:
    """Whether any edge of the rings jumps more than 180° in longitude."""
    for ring in rings:
        for a, b in zip(ring, ring[1:], strict=False):
            if abs(float(b[0]) - float(a[0])) > 180.0:
                return True
    return False


def _unwrap(ring: Sequence[Sequence[float]], where: str) -> list[tuple[float, float]]:
    out = [(float(ring[0][0]), float(ring[0][1]))]
    offset = 0.0
    for a, b in zip(ring, ring[1:], strict=False):
        step = float(b[0]) - float(a[0])
        if step > 180.0:
            offset -= 360.0
        elif step < -180.0:
            offset += 360.0
        out.append((float(b[0]) + offset, float(b[1])))
    if offset != 0.0:
        raise Invalid(
            f"{where}: its edges go all the way round the Earth (a ring around a pole);"
            " split the area at the antimeridian into polygons each within [-180, 180]"
            " longitude (RFC 7946 section 3.1.9), e.g. a MultiPolygon",
            code="invalid_geometry",
        )
    return out


def unwrap_rings(
    rings: Sequence[Sequence[Sequence[float]]], label: str
) -> list[list[tuple[float, float]]]:
    """The rings with continuous longitudes (edges read the short way across 180°),
    holes moved into the outline's 360° window.

    Raises:
        Invalid: a ring whose edges circle a pole, with a hint to split it.
    """
    out = [_unwrap(ring, f"{label} ring {i}") for i, ring in enumerate(rings)]
    shell_lon = out[0][0][0]
    for ring in out[1:]:
        shift = 360.0 * round((shell_lon - ring[0][0]) / 360.0)
        if shift:
            ring[:] = [(lon + shift, lat) for lon, lat in ring]
    return out


def wrap_to_world(geom: BaseGeometry) -> BaseGeometry:
    """``geom`` cut at ±180° with what lies beyond shifted back by 360°."""
    b = geom.bounds
    if b[0] >= -180.0 and b[2] <= 180.0:
        return geom
    parts = []
    for west, shift in _WINDOWS:
        piece = shapely.intersection(geom, shapely.box(west, -90.0, west + 360.0, 90.0))
        if not piece.is_empty:
            parts.append(shapely.transform(piece, lambda xy, s=shift: xy + [s, 0.0]))
    return shapely.union_all(parts)
