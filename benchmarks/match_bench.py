"""Matching 1,000,000 client points against a county alert and a whole-state alert.

Fills a :class:`broadcaster.index.SocketIndex` with point-tagged stand-ins for
sockets, then times ``SocketIndex.match`` for an :class:`amber_relay.geo.Area` built
from a county (Harris, 48201) and from its state (Texas, 48), with the shipped
geodata. Goals (the fan-out issue): county < 2 ms, whole state < 35 ms.

"cold" is the first match of an alert version (it classifies every grid cell as
inside / boundary / outside, which is what a publish pays); "warm" reuses that
classification, as every later hello or move of the same version does.

Points are uniform by area over the state's bounding box plus ``--pad-deg``, so
some fall outside the state (neighbouring states, sea) and the state alert must
leave them out. Every match is checked against a brute-force shapely test.

Usage::

    python benchmarks/match_bench.py [--points 1000000] [--county 48201] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import shapely

from amber_relay import geodata
from amber_relay.geo import Area
from broadcaster.index import Cell, SocketIndex


class Point:
    """A stand-in for a socket: what the index reads of one, and a send that drops."""

    __slots__ = ("cell", "lat", "lon", "region", "slot")

    def __init__(self, lat: float, lon: float) -> None:
        self.lat: float | None = lat
        self.lon: float | None = lon
        self.region: str | None = None
        self.cell: Cell | None = None
        self.slot = -1

    def send(self, data: bytes) -> bool:
        return True


def time_match(
    index: SocketIndex[Point], area: Area, rounds: int
) -> tuple[list[float], list[float], int]:
    """Cold (fresh cell cache) and warm (cached) match times in ms, and the match count."""
    cold: list[float] = []
    warm: list[float] = []
    n = 0
    for _ in range(rounds):
        cache: dict[Cell, int] = {}
        t0 = time.perf_counter()
        n = sum(map(len, index.match(area, (), cache)))
        cold.append((time.perf_counter() - t0) * 1e3)
        t0 = time.perf_counter()
        index.match(area, (), cache)
        warm.append((time.perf_counter() - t0) * 1e3)
    return cold, warm, n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--points", type=int, default=1_000_000)
    p.add_argument("--county", default="48201")
    p.add_argument("--pad-deg", type=float, default=0.5)
    p.add_argument("--cell-deg", type=float, default=0.25, help="grid (AMBER_GRID_DEG)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print one JSON line of results")
    args = p.parse_args()
    geo = geodata.load()
    county = geo.county(args.county)
    state = geo.states.get(args.county[:2])
    if county is None or state is None:
        raise SystemExit(f"unknown county {args.county}")
    rng = np.random.default_rng(args.seed)
    x0, y0, x1, y1 = state.bounds
    pad = args.pad_deg
    lons = rng.uniform(x0 - pad, x1 + pad, args.points).round(6)
    lats = rng.uniform(y0 - pad, y1 + pad, args.points).round(6)
    index: SocketIndex[Point] = SocketIndex(args.cell_deg)
    t0 = time.perf_counter()
    for lat, lon in zip(lats.tolist(), lons.tolist(), strict=True):
        index.add(Point(lat, lon))
    fill_s = time.perf_counter() - t0
    results: dict[str, object] = {
        "points": args.points,
        "cell_deg": args.cell_deg,
        "cells": len(index.cells),
        "fill_s": round(fill_s, 2),
    }
    for label, geom, goal in (("county", county, 2.0), ("state", state, 35.0)):
        area = Area(geom)
        cold, warm, n = time_match(index, area, args.rounds)
        truth = int(shapely.intersects_xy(geom, lons, lats).sum())
        results[label] = {
            "matched": n,
            "exact": n == truth,
            "cold_ms_median": round(statistics.median(cold), 3),
            "warm_ms_median": round(statistics.median(warm), 3),
            "cold_ms": [round(v, 3) for v in cold],
            "warm_ms": [round(v, 3) for v in warm],
            "goal_ms": goal,
        }
    if args.json:
        print(json.dumps(results))
        return
    print(
        f"{args.points:,} points in {results['cells']} cells of {args.cell_deg} deg"
        f" (filled in {fill_s:.1f} s)"
    )
    for label in ("county", "state"):
        r = results[label]
        assert isinstance(r, dict)
        print(
            f"{label:>6}: matched {r['matched']:>9,} (exact: {r['exact']})"
            f"  cold {r['cold_ms_median']:8.3f} ms  warm {r['warm_ms_median']:8.3f} ms"
            f"  goal < {r['goal_ms']} ms   cold runs {r['cold_ms']}"
        )


if __name__ == "__main__":
    main()
