"""Simplified state and county outlines for display (the console's map); pure.

Matching never uses these: they are drawn on a screen, so vertices closer than the
tolerance are dropped (topology kept) and coordinates rounded to 4 decimals (~10 m).
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
import shapely
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

__all__ = ["feature_collection", "simplified_geojson"]

_DECIMALS = 4
_enc = msgspec.json.Encoder()


def simplified_geojson(geom: BaseGeometry, tolerance_deg: float) -> dict[str, object]:
    """A GeoJSON geometry of ``geom`` simplified to ``tolerance_deg``, rounded."""
    simple = shapely.set_precision(
        shapely.simplify(geom, tolerance_deg, preserve_topology=True), 10**-_DECIMALS
    )
    if simple.is_empty:  # a sliver smaller than the tolerance: keep it visible
        simple = geom
    out: dict[str, object] = dict(mapping(simple))
    return out


def feature_collection(
    geoms: Mapping[str, BaseGeometry], names: Mapping[str, str], tolerance_deg: float
) -> bytes:
    """A GeoJSON FeatureCollection (id, ``properties.name``, bbox) of ``geoms``, as JSON."""
    features = []
    for code in sorted(geoms):
        g = geoms[code]
        features.append(
            {
                "type": "Feature",
                "id": code,
                "properties": {"name": names.get(code, code)},
                "bbox": [round(v, _DECIMALS) for v in g.bounds],
                "geometry": simplified_geojson(g, tolerance_deg),
            }
        )
    return _enc.encode({"type": "FeatureCollection", "features": features})
