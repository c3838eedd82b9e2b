"""A small reader of ESRI shapefiles (.shp polygons + .dbf attributes), for the data build.

Only what the Census cartographic boundary files use: shape type 5 (Polygon) or 0 (null
shape) in the .shp, and character/numeric fields in a dBASE III .dbf. Pure Python and
numpy, no I/O: callers pass the files' bytes. Format: the ESRI Shapefile Technical
Description (July 1998) and the dBASE III file header layout.

A Polygon record is a list of rings; rings are not grouped into polygons in the file
(an outer ring is clockwise, a hole counter-clockwise), so :func:`group_rings` does that.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["ShapeError", "Shape", "read_dbf", "read_shp", "group_rings"]

Ring = npt.NDArray[np.float64]  # (n, 2) lon, lat; closed (first == last)


class ShapeError(ValueError):
    """The bytes are not a shapefile this reader understands."""


@dataclass(frozen=True)
class Shape:
    """One .shp record: its rings (``[]`` for a null shape) and bounding box."""

    rings: list[Ring]
    bbox: tuple[float, float, float, float]


def read_shp(data: bytes) -> list[Shape]:
    """Every record of a Polygon .shp, in file order.

    Raises:
        ShapeError: not a shapefile, or a shape type other than Polygon / null.
    """
    if len(data) < 100 or struct.unpack(">i", data[:4])[0] != 9994:
        raise ShapeError("not a shapefile (file code is not 9994)")
    (file_words,) = struct.unpack(">i", data[24:28])
    if file_words * 2 != len(data):
        raise ShapeError(f"file length {file_words * 2} in the header, {len(data)} bytes read")
    shapes: list[Shape] = []
    pos = 100
    while pos < len(data):
        _num, words = struct.unpack(">ii", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + words * 2]
        pos += 8 + words * 2
        (kind,) = struct.unpack("<i", body[:4])
        if kind == 0:
            shapes.append(Shape([], (0.0, 0.0, 0.0, 0.0)))
            continue
        if kind != 5:
            raise ShapeError(f"shape type {kind} (only 5, Polygon, is read)")
        xmin, ymin, xmax, ymax, nparts, npoints = struct.unpack("<4d2i", body[4:44])
        parts = np.frombuffer(body, "<i4", nparts, 44).tolist() + [npoints]
        pts = np.frombuffer(body, "<f8", 2 * npoints, 44 + 4 * nparts).reshape(-1, 2)
        rings = [pts[parts[i] : parts[i + 1]].copy() for i in range(nparts)]
        shapes.append(Shape(rings, (xmin, ymin, xmax, ymax)))
    return shapes


def read_dbf(data: bytes) -> list[dict[str, str]]:
    """Every record of a dBASE III .dbf as ``{field: stripped text}``; deleted ones skipped.

    Raises:
        ShapeError: the header is inconsistent.
    """
    nrec, header_len, rec_len = struct.unpack("<IHH", data[4:12])
    fields: list[tuple[str, int]] = []
    pos = 32
    while data[pos] != 0x0D:
        name = data[pos : pos + 11].split(b"\0")[0].decode("ascii")
        fields.append((name, data[pos + 16]))
        pos += 32
    if sum(n for _, n in fields) + 1 != rec_len or pos + 1 > header_len:
        raise ShapeError("dbf field lengths do not add up to the record length")
    out: list[dict[str, str]] = []
    for i in range(nrec):
        rec = data[header_len + i * rec_len : header_len + (i + 1) * rec_len]
        if rec[:1] == b"*":
            continue
        row: dict[str, str] = {}
        at = 1
        for name, size in fields:
            row[name] = rec[at : at + size].decode("latin-1").strip()
            at += size
        out.append(row)
    return out


def _signed_area(ring: Ring) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return float(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1])) / 2.0


def group_rings(rings: list[Ring]) -> list[tuple[Ring, list[Ring]]]:
    """Group a record's rings into (outer, holes) polygons.

    Outer rings are clockwise (negative signed area), holes counter-clockwise; each hole
    goes to the smallest outer ring whose bounding box holds its first vertex and that
    contains a point inside it (tested with shapely, imported here so the reader itself
    needs none).
    """
    from shapely import Polygon, contains_xy

    outers = [r for r in rings if _signed_area(r) < 0]
    holes = [r for r in rings if _signed_area(r) > 0]
    groups: list[tuple[Ring, list[Ring]]] = [(r, []) for r in outers]
    polys = [Polygon(r) for r in outers]
    for h in holes:
        inner = Polygon(h).representative_point()
        x, y = inner.x, inner.y
        best = None
        for i, p in enumerate(polys):
            if contains_xy(p, x, y) and (best is None or p.area < polys[best].area):
                best = i
        if best is None:
            raise ShapeError(f"hole at {x},{y} lies in no outer ring")
        groups[best][1].append(h)
    return groups
