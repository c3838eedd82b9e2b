"""Cost of the jurisdiction check: building the cached outlines once, then per alert.

``python -m benchmarks.jurisdiction_bench``: prints the one-off build time of the US
and the Texas outlines and the median and worst time of a check, for areas inside
(the usual case) and outside (which also computes where).
"""

from __future__ import annotations

import statistics
import time

from shapely.geometry import box

from amber_relay.errors import Forbidden
from amber_relay.geodata import load

CASES = {
    "TX: San Antonio box (inside)": (["48"], box(-98.75, 29.25, -98.25, 29.75)),
    "TX: Laredo + Mexico (outside)": (["48"], box(-100.6, 27.0, -99.5, 28.2)),
    "US: Harris County box (inside)": (["US"], box(-95.8, 29.5, -95.0, 30.1)),
    "US: Toronto box (outside)": (["US"], box(-79.5, 43.6, -79.3, 43.75)),
}


def main() -> None:
    gd = load()
    for jurisdiction in (["US"], ["48"]):
        t0 = time.perf_counter()
        gd.check_jurisdiction([("warm", box(-98.5, 29.4, -98.4, 29.5))], [], jurisdiction)
        print(f"build {jurisdiction}: {(time.perf_counter() - t0) * 1000:.0f} ms (once)")
    for name, (jurisdiction, geom) in CASES.items():
        times = []
        for _ in range(200):
            t0 = time.perf_counter()
            try:
                gd.check_jurisdiction([("area", geom)], [], jurisdiction)
            except Forbidden:
                pass
            times.append((time.perf_counter() - t0) * 1000)
        print(f"{name:<32} median {statistics.median(times):.3f} ms, max {max(times):.2f} ms")


if __name__ == "__main__":
    main()
