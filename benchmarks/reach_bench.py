"""Preview reach at scale: publishing a broadcaster's cell counts, and counting an area.

Files ``--points`` point-tagged stand-ins for sockets, uniform over the lower 48's
bounding box, in a :class:`broadcaster.hub.Hub`'s index, then times what a serving
process pays every ``AMBER_REACH_PUBLISH_S``: the chunked snapshot (yielding to the
event loop between chunks) and its encoding, with the longest gap a ticker task on the
same loop saw; the idle loop's longest gap is measured first for reference (a shared
machine's scheduler noise). Then times ``count_inside`` for a county and a state.

Usage::

    python benchmarks/reach_bench.py [--points 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from amber_relay import geodata
from amber_relay.geo import Area
from benchmarks.match_bench import Point
from broadcaster import reach
from broadcaster.hub import Hub


async def _longest_gap_ms(work: asyncio.Future[Any] | None, idle_s: float = 0.3) -> float:
    """The longest wait between two turns of a task on this loop while ``work`` runs."""
    gap, last = 0.0, time.perf_counter()
    end = last + idle_s
    while (work is not None and not work.done()) or (work is None and last < end):
        await asyncio.sleep(0)
        now = time.perf_counter()
        gap, last = max(gap, now - last), now
    return gap * 1000


async def _publish_cost(hub: Hub) -> None:
    idle = await _longest_gap_ms(None)
    t0 = time.perf_counter()
    task = asyncio.ensure_future(reach._snapshot_yielding(hub, "bench"))
    stall = await _longest_gap_ms(task)
    snap = task.result()
    data = reach._enc.encode(snap)
    total = (time.perf_counter() - t0) * 1000
    cells = len(snap.cells) // 12
    print(
        f"snapshot: {cells} cells, {len(data) / 1024:.0f} KiB, {total:.0f} ms in all;"
        f" longest loop stall {stall:.1f} ms (idle loop: {idle:.1f} ms)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1_000_000)
    args = ap.parse_args()
    rng = random.Random(1)
    geo = geodata.load()
    hub = Hub(geo, cell_deg=0.125)
    for _ in range(args.points):
        hub.index.add(Point(rng.uniform(25, 49), rng.uniform(-124, -67)))
    gc.freeze()  # as the server does for its long-lived objects
    asyncio.run(_publish_cost(hub))
    snap = reach.snapshot_of(hub, "bench", time.time())
    for name, area in (
        ("Bexar County", Area(geo.counties["48029"])),
        ("Texas", Area(geo.states["48"])),
    ):
        t0 = time.perf_counter()
        n = reach.count_inside(area, [], [snap])
        print(f"count_inside {name}: {n} in {(time.perf_counter() - t0) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
