"""A small TopoJSON decoder (quantized, delta-encoded arcs), for the data build.

Enough of the TopoJSON specification (github.com/topojson/topojson-specification) for
the us-atlas files: a ``transform`` with quantized, delta-encoded arcs, and
GeometryCollections of Polygon / MultiPolygon. Pure Python, no I/O.
"""

from __future__ import annotations

from typing import Any

__all__ = ["decode"]

Coords = list[list[float]]


def _arcs(topo: dict[str, Any]) -> list[Coords]:
    (sx, sy), (tx, ty) = topo["transform"]["scale"], topo["transform"]["translate"]
    out: list[Coords] = []
    for arc in topo["arcs"]:
        x = y = 0
        pts: Coords = []
        for dx, dy in arc:
            x += dx
            y += dy
            pts.append([x * sx + tx, y * sy + ty])
        out.append(pts)
    return out


def _ring(arcs: list[Coords], refs: list[int]) -> Coords:
    ring: Coords = []
    for r in refs:
        pts = arcs[r] if r >= 0 else arcs[~r][::-1]
        # consecutive arcs share their end point: keep it once
        ring.extend(pts if not ring else pts[1:])
    return ring


def decode(topo: dict[str, Any], name: str) -> list[tuple[str, str, list[list[Coords]]]]:
    """Features of object ``name`` as (id, name, polygons of rings [[lon, lat], ...])."""
    arcs = _arcs(topo)
    out: list[tuple[str, str, list[list[Coords]]]] = []
    for g in topo["objects"][name]["geometries"]:
        if g["type"] == "Polygon":
            polys = [g["arcs"]]
        elif g["type"] == "MultiPolygon":
            polys = g["arcs"]
        else:
            polys = []
        rings = [[_ring(arcs, r) for r in poly] for poly in polys]
        out.append((str(g["id"]), str(g["properties"]["name"]), rings))
    return out
