"""Display outlines: simplified GeoJSON of the geodata, rounded, never empty."""

from __future__ import annotations

import json

from shapely.geometry import shape

from amber_relay import geodata
from amber_relay.outlines import feature_collection, simplified_geojson


def test_county_outlines_are_simplified_and_close_to_the_originals() -> None:
    """Fewer vertices, the same county within the tolerance, 4-decimal coordinates."""
    g = geodata.load()
    bexar = g.counties["48029"]
    fc = json.loads(feature_collection({"48029": bexar}, g.county_names, 0.005))
    feature = fc["features"][0]
    assert feature["id"] == "48029" and feature["properties"]["name"].startswith("Bexar")
    simple = shape(feature["geometry"])
    assert simple.symmetric_difference(bexar).area < 0.01 * bexar.area
    ring = feature["geometry"]["coordinates"][0]
    assert all(round(c, 4) == c for pos in ring for c in pos)


def test_a_sliver_smaller_than_the_tolerance_is_kept() -> None:
    """A tiny polygon does not vanish from the map."""
    tiny = shape({"type": "Polygon", "coordinates": [[[0, 0], [0.001, 0], [0.001, 0.001], [0, 0]]]})
    assert simplified_geojson(tiny, 1.0)["type"] == "Polygon"
