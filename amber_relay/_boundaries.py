"""Reader of ``amber_relay/data/us-boundaries.bin``: features decoded one at a time.

The file (written by ``tools/build_geodata.py``; docs/geodata.md) is::

    b"AMBRGEO1"  u32 little-endian header length  JSON header (space-padded to 8 bytes)
    arrays, each at the offset the header gives, little-endian, 8-byte aligned:
      bbox         int32 [features, 4]   min lon, min lat, max lon, max lat (1e-5 deg,
                                         rounded outward)
      feat_rings   int32 [features + 1]  first ring of each feature
      ring_verts   int32 [rings + 1]     first vertex of each ring
      ring_head    int32 [rings, 3]      first vertex (lon, lat in 1e-5 deg), 1 if the
                                         ring is a polygon's outer ring else 0
      deltas       int16 [vertices, 2]   vertex minus previous vertex of its ring (the
                                         first vertex of a ring has 0, 0)

Rings are closed (first vertex = last). Coordinates are integers of 1e-5 degree (at most
1.1 m; rounding moves a vertex by at most 0.8 m) and consecutive vertices differ by at most
32,767 of them, 0.33 degree (the build splits the rare longer edges at points on them), so
a vertex costs 4 bytes.

The file is memory-mapped: processes share its pages through the page cache and a
process only touches the pages of the features it decodes.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

__all__ = ["MAGIC", "SCALE", "Boundaries"]

MAGIC = b"AMBRGEO1"
SCALE = 1e-5
"""Degrees per coordinate unit."""

IntArray = npt.NDArray[np.int64]


class Boundaries:
    """The features of a boundaries file, by index; geometries decoded on demand."""

    def __init__(self, path: Path) -> None:
        self._mm = np.memmap(path, dtype=np.uint8, mode="r")
        head = bytes(self._mm[:12])
        if head[:8] != MAGIC:
            raise ValueError(f"{path}: not a boundaries file")
        (hlen,) = struct.unpack("<I", head[8:12])
        self.header: dict[str, Any] = json.loads(bytes(self._mm[12 : 12 + hlen]))
        self.ids: list[str] = [f[0] for f in self.header["features"]]
        self.names: list[str] = [f[1] for f in self.header["features"]]
        self.bbox = self._array("bbox").astype(np.float64).reshape(-1, 4) * SCALE
        self._feat_rings = self._array("feat_rings")
        self._ring_verts = self._array("ring_verts")
        self._ring_head = self._array("ring_head").reshape(-1, 3)
        self._deltas = self._array("deltas").reshape(-1, 2)

    def _array(self, name: str) -> npt.NDArray[Any]:
        offset, dtype, count = self.header["arrays"][name]
        return np.frombuffer(self._mm, dtype=np.dtype(dtype), count=count, offset=offset)

    def vertices(self, i: int) -> int:
        """How many vertices feature ``i`` has."""
        r0, r1 = int(self._feat_rings[i]), int(self._feat_rings[i + 1])
        return int(self._ring_verts[r1]) - int(self._ring_verts[r0])

    def geometry(self, i: int) -> BaseGeometry:
        """Feature ``i`` as a (Multi)Polygon in lon/lat degrees; a new object each call."""
        r0, r1 = int(self._feat_rings[i]), int(self._feat_rings[i + 1])
        starts = self._ring_verts[r0 : r1 + 1].astype(np.int64)
        v0 = int(starts[0])
        steps = self._deltas[int(starts[0]) : int(starts[-1])].astype(np.int64)
        local = starts[:-1] - v0
        cum = np.cumsum(steps, axis=0)
        heads = self._ring_head[r0:r1].astype(np.int64)
        # vertex = ring's head + the deltas since the ring's first vertex
        base = heads[:, :2] - cum[local]
        xy = cum + np.repeat(base, np.diff(starts), axis=0)
        coords = xy.astype(np.float64) * SCALE
        outer = np.flatnonzero(heads[:, 2])
        ring_offsets = starts - v0
        poly_offsets = np.append(outer, r1 - r0)
        geom_offsets = np.array([0, len(outer)], dtype=np.int64)
        multi = shapely.from_ragged_array(
            shapely.GeometryType.MULTIPOLYGON, coords, (ring_offsets, poly_offsets, geom_offsets)
        )[0]
        if len(outer) == 1:
            return multi.geoms[0]
        return multi
