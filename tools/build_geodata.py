"""Clean the us-atlas 3.0.1 county/state GeoJSON into amber_relay/data/*.geojson.gz.

The Python half of ``tools/build_geodata.sh`` (which fetches us-atlas with npm and decodes
it with topojson-client's ``topo2geo``); provenance and defects are in ``docs/geodata.md``.
The clean-up is the one documented in docs/geodata.md (from the data's README), step for step:

1. coordinates rounded to 6 decimals (0.1 m; the source grid is ~100-300 m);
2. rings with fewer than 3 distinct points dropped (a collapsed outer ring drops its
   polygon part, a collapsed hole is removed);
3. geometries still invalid repaired with ``shapely.make_valid(method="structure",
   keep_collapsed=False)``, keeping polygonal parts only;
4. a feature left with no area gets ``"geometry": null`` (Falls Church, VA, 51610).

Usage::

    python tools/build_geodata.py build IN_DIR OUT_DIR   # IN_DIR: counties.json, states.json
    python tools/build_geodata.py roundtrip DATA_DIR     # re-clean shipped *.geojson.gz

``roundtrip`` feeds the shipped files back through the clean-up and fails unless it
changes nothing: a check of this script (and of the shipped data) that needs no npm.

Needs Python 3.11+ and shapely 2.x. With another shapely/GEOS than 2.2.0/3.14.1 the
repaired vertices may differ in the last digits, so the sha256 may differ; ids, names
and feature counts do not.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, Polygon, mapping
from shapely.geometry.base import BaseGeometry

NAMES = ("counties", "states")

# sha256 of what is shipped in amber_relay/data (built with shapely 2.2.0 / GEOS 3.14.1).
SHIPPED_SHA256 = {
    "counties": {
        "json": "95010af94e7b64ba8e5df8c350232a3e92cb84441c9914424ba6116694e8bcf0",
        "gz": "b42ec9a548bb46240e601d77459faa1fe2759a21f1360ed422cd7dbd4e9046ea",
    },
    "states": {
        "json": "a9479d436f07a1f1724efb5590c3851690a33803b6e116f1025efcdf49dca558",
        "gz": "d5841b45108016f83b8001da47e0dc640935d6b33f88f72e88d4b7e9e77e6ce3",
    },
}
EXPECTED_FEATURES = {"counties": 3231, "states": 56}


def clean(geom: dict[str, Any] | None, log: list[str], fid: str) -> BaseGeometry | None:
    """The feature's geometry cleaned as the README says; ``None`` if no area is left.

    Appends one line per fix to ``log``. A ``None`` input (only met when re-cleaning
    already shipped data) stays ``None`` without a log line.
    """
    if geom is None:
        return None
    if geom["type"] not in ("Polygon", "MultiPolygon"):
        raise ValueError(f"{fid}: unexpected geometry type {geom['type']}")
    parts = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
    polys = []
    for rings in parts:
        rings = [[[round(x, 6), round(y, 6)] for x, y in r] for r in rings]
        # drop rings collapsed to a point or a line by the 1:10m simplification
        if len({tuple(c) for c in rings[0]}) < 3:
            log.append(f"{fid}: dropped collapsed polygon part")
            continue
        holes = [r for r in rings[1:] if len({tuple(c) for c in r}) >= 3]
        if len(holes) < len(rings) - 1:
            log.append(f"{fid}: dropped collapsed hole")
        polys.append(Polygon(rings[0], holes))
    g: BaseGeometry | None = (
        MultiPolygon(polys) if len(polys) > 1 else (polys[0] if polys else None)
    )
    if g is not None and not g.is_valid:
        log.append(f"{fid}: make_valid (structure): {shapely.is_valid_reason(g)}")
        g = shapely.make_valid(g, method="structure", keep_collapsed=False)
        if g.geom_type == "GeometryCollection":
            g = shapely.union_all(
                [p for p in g.geoms if p.geom_type in ("Polygon", "MultiPolygon")]
            )
    if g is not None and g.is_empty:
        g = None
    if g is None:
        log.append(f"{fid}: no area left at 1:10m -> geometry null")
    return g


def clean_collection(fc: dict[str, Any]) -> tuple[bytes, list[str]]:
    """Compact JSON bytes of the cleaned FeatureCollection, and the fix log."""
    log: list[str] = []
    feats = []
    for f in fc["features"]:
        g = clean(f["geometry"], log, f["id"])
        assert g is None or (g.is_valid and g.geom_type in ("Polygon", "MultiPolygon"))
        feats.append(
            {
                "type": "Feature",
                "id": f["id"],
                "properties": {"id": f["id"], "name": f["properties"]["name"]},
                "geometry": None if g is None else mapping(g),
            }
        )
    data = json.dumps({"type": "FeatureCollection", "features": feats}, separators=(",", ":"))
    return data.encode(), log


def _digest(name: str, data: bytes, gz: bytes) -> str:
    raw, packed = hashlib.sha256(data).hexdigest(), hashlib.sha256(gz).hexdigest()
    same = SHIPPED_SHA256[name] == {"json": raw, "gz": packed}
    note = "same as shipped" if same else "differs from shipped (other shapely/GEOS/zlib?)"
    return f"  sha256 gz {packed}\n  sha256 json {raw}\n  ({note})"


def build(in_dir: Path, out_dir: Path) -> int:
    """Clean ``in_dir``/{counties,states}.json (topo2geo output) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        fc = json.loads((in_dir / f"{name}.json").read_text(encoding="utf-8"))
        data, log = clean_collection(fc)
        count = len(fc["features"])
        if count != EXPECTED_FEATURES[name]:
            print(f"{name}: {count} features, expected {EXPECTED_FEATURES[name]}", file=sys.stderr)
            return 1
        gz = gzip.compress(data, 9, mtime=0)
        (out_dir / f"us-{name}.geojson.gz").write_bytes(gz)
        print(f"{name} {count} features; {len(log)} fixes")
        print("\n".join("  " + line for line in log))
        print(_digest(name, data, gz))
    return 0


def _max_shift(a: Any, b: Any) -> float | None:
    """Largest coordinate difference of two equally nested coordinate arrays, else None."""
    if isinstance(a, float | int) and isinstance(b, float | int):
        return abs(float(a) - float(b))
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        shifts = [_max_shift(x, y) for x, y in zip(a, b, strict=True)]
        if any(d is None for d in shifts):
            return None
        return max((d or 0.0 for d in shifts), default=0.0)
    return None


def roundtrip(data_dir: Path) -> int:
    """Re-clean the shipped files; 0 if that changes nothing but rounding.

    The clean-up rounds before it repairs, so the vertices ``make_valid`` added where
    rings crossed (4 counties: 06001, 22067, 51093, 51620) are off the 6-decimal grid,
    and re-cleaning only rounds them (a shift of at most 5e-7 deg, 5 cm). Anything
    else (a fix logged, another feature changed, a larger shift) fails.
    """
    status = 0
    for name in NAMES:
        raw = gzip.decompress((data_dir / f"us-{name}.geojson.gz").read_bytes())
        fc = json.loads(raw)
        data, log = clean_collection(fc)
        if log:
            print(f"{name}: re-cleaning made fixes: {log}", file=sys.stderr)
            status = 1
        if data == raw:
            print(f"{name}: unchanged by re-cleaning ({len(raw)} bytes)")
            continue
        rounded = []
        for before, after in zip(fc["features"], json.loads(data)["features"], strict=True):
            if before == after:
                continue
            shift = None
            if before["geometry"] and after["geometry"]:
                if before["geometry"]["type"] == after["geometry"]["type"]:
                    shift = _max_shift(
                        before["geometry"]["coordinates"], after["geometry"]["coordinates"]
                    )
            if shift is None or shift > 5.0000001e-7:
                print(f"{name}: re-cleaning changed feature {before['id']}", file=sys.stderr)
                status = 1
            else:
                rounded.append(f"{before['id']} ({shift:.1e} deg)")
        print(
            f"{name}: unchanged by re-cleaning but for rounding the make_valid vertices of"
            f" {', '.join(rounded)}"
        )
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="clean topo2geo output into us-*.geojson.gz")
    b.add_argument("in_dir", type=Path, help="directory with counties.json and states.json")
    b.add_argument("out_dir", type=Path, help="where us-counties/us-states.geojson.gz go")
    r = sub.add_parser("roundtrip", help="check that re-cleaning shipped files changes nothing")
    r.add_argument("data_dir", type=Path, help="directory with us-*.geojson.gz")
    args = parser.parse_args(argv)
    if args.cmd == "build":
        return build(args.in_dir, args.out_dir)
    return roundtrip(args.data_dir)


if __name__ == "__main__":
    sys.exit(main())
