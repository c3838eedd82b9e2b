"""Preview reach: how many clients are connected inside an area, over every broadcaster.

Each broadcaster publishes, every ``reach_publish_s``, only coarse counts: sockets per
grid cell of its index (``grid_deg``) and per county tag, never a location. A preview
sums those snapshots: a cell wholly inside the area counts exactly; a cell on the
area's boundary (or meeting a circle) counts whole, so the figure is never below the
true number; county-tagged sockets count when their county touches the area, as the
hub would send them the alert.

Publishing reads the index's bucket lengths on a timer, off the fan-out path.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
from redis.exceptions import RedisError

from amber_relay.geo import Area
from amber_relay.store import Store

from .hub import Hub
from .index import OUTSIDE, Cell, SocketIndex

__all__ = [
    "Snapshot",
    "count_inside",
    "publish_counts",
    "read_snapshots",
    "snapshot_of",
    "ttl_of",
    "cells_of",
]

log = logging.getLogger("amber_relay.reach")

# Snapshots live this many publishing intervals: a process that died drops out.
_TTL_INTERVALS = 3
# How long a stopping process lets its last snapshot write finish.
_WRITE_GRACE_S = 2.0


class Snapshot(msgspec.Struct, frozen=True, array_like=True):
    """One broadcaster's connection counts at time ``t`` (unix seconds)."""

    node: str
    t: float
    cell_deg: float
    cells: bytes
    """(cell y, cell x, sockets) of every occupied cell: little-endian int32 triples."""
    regions: dict[str, int]
    """County FIPS -> sockets tagged with it."""


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(Snapshot)


_CELL_DTYPE = np.dtype("<i4")
# Cells counted between two yields to the event loop while publishing: a million
# sockets fill ~90,000 cells, and counting them in one go holds fan-out 50-150 ms here.
_CHUNK_CELLS = 1024


def _cell_chunks(hub: Hub, chunk: int) -> Iterator[npt.NDArray[np.int32]]:
    # Keys are copied first (a C-level copy of references), so the index may change
    # between chunks: a cell emptied meanwhile is skipped, one filled meanwhile waits
    # for the next snapshot. Counts stay coarse either way.
    cells = hub.index.cells
    keys = list(cells)
    for i in range(0, len(keys), chunk):
        out = []
        for key in keys[i : i + chunk]:
            bucket = cells.get(key)
            if bucket is not None and bucket.socks:
                out.append((key[0], key[1], len(bucket.socks)))
        yield np.array(out, dtype=_CELL_DTYPE).reshape(-1, 3)


def _snapshot(hub: Hub, node: str, now: float, parts: list[npt.NDArray[np.int32]]) -> Snapshot:
    cells = np.concatenate(parts).tobytes() if parts else b""
    regions = {r: len(s) for r, s in hub.index.regions.items()}
    return Snapshot(node=node, t=now, cell_deg=hub.index.cell_deg, cells=cells, regions=regions)


def snapshot_of(hub: Hub, node: str, now: float) -> Snapshot:
    """The counts of one hub's index now, in one go (tests, small indexes)."""
    return _snapshot(hub, node, now, list(_cell_chunks(hub, _CHUNK_CELLS)))


async def _snapshot_yielding(hub: Hub, node: str) -> Snapshot:
    parts = []
    for part in _cell_chunks(hub, _CHUNK_CELLS):
        parts.append(part)
        await asyncio.sleep(0)  # let fan-out and handshakes run between chunks
    return _snapshot(hub, node, time.time(), parts)


def cells_of(snap: Snapshot) -> npt.NDArray[np.int32]:
    """A snapshot's cells as rows of (y, x, sockets)."""
    arr: npt.NDArray[np.int32] = np.frombuffer(snap.cells, dtype=_CELL_DTYPE).reshape(-1, 3)
    return arr


def ttl_of(interval_s: float) -> float:
    """How long a snapshot published every ``interval_s`` stays valid."""
    return _TTL_INTERVALS * interval_s + 1.0


async def publish_counts(store: Store, hub: Hub, node: str, interval_s: float) -> None:
    """Publish this node's snapshot every ``interval_s`` until cancelled.

    A failed write is logged and retried at the next tick (the previous snapshot
    expires meanwhile, which can only lower a preview's figure for a few seconds).
    The first snapshot is taken one interval after start: a new process has no
    sockets yet, and writing while the hub first syncs left redis-py connections
    unclosed at shutdown in the tests.
    """
    ttl = ttl_of(interval_s)
    while True:
        await asyncio.sleep(interval_s)
        snap = await _snapshot_yielding(hub, node)
        data = _enc.encode(snap)  # the cells are one bytes field: a copy, no per-cell work
        write = asyncio.ensure_future(store.put_counts(node, data, snap.t, ttl))
        try:
            # A write cut off by cancellation leaves redis-py's connection unclosed:
            # on shutdown, let the write (milliseconds) finish, then stop.
            await asyncio.shield(write)
        except asyncio.CancelledError:
            await asyncio.wait([write], timeout=_WRITE_GRACE_S)
            raise
        except (RedisError, OSError) as exc:
            log.warning("reach snapshot not published: %r", exc)


async def read_snapshots(store: Store, now: float, interval_s: float) -> list[Snapshot]:
    """Every live node's latest snapshot (raises RedisError/OSError if Redis is down)."""
    out: list[Snapshot] = []
    for blob in await store.counts(now, ttl_of(interval_s)):
        try:
            out.append(_dec.decode(blob))
        except msgspec.DecodeError:
            log.warning("ignoring an unreadable reach snapshot")
    return out


def count_inside(area: Area, regions: Iterable[str], snapshots: Iterable[Snapshot]) -> int:
    """Clients connected inside ``area``: exact for whole cells, boundary cells whole.

    ``regions`` are the county codes the area touches (county-tagged sockets). Pure:
    geometry only; run it off the event loop for large areas.
    """
    touched = set(regions)
    min_lon, min_lat, max_lon, max_lat = area.bbox
    total = 0
    for snap in snapshots:
        total += sum(n for fips, n in snap.regions.items() if fips in touched)
        d = snap.cell_deg
        y0, y1 = math.floor(min_lat / d), math.floor(max_lat / d)
        x0, x1 = math.floor(min_lon / d), math.floor(max_lon / d)
        rows = cells_of(snap)
        keep = (rows[:, 0] >= y0) & (rows[:, 0] <= y1) & (rows[:, 1] >= x0) & (rows[:, 1] <= x1)
        rows = rows[keep]
        if not len(rows):
            continue
        near: dict[Cell, int] = {(y, x): n for y, x, n in rows.tolist()}
        grid: SocketIndex[Any] = SocketIndex(d)
        classes = grid.classify(area, list(near))
        total += sum(n for c, n in near.items() if classes[c] != OUTSIDE)
    return total
