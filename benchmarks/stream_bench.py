"""The broadcaster's Python cost per connection, without sockets: handshake + hello, fan-out.

Drives :class:`broadcaster.stream.Connection` objects with a fake transport: each gets
the upgrade request and a hello frame exactly as a client sends them, then one alert
on a county is published to all of them. What is left is the Python work the
broadcaster does per connection (the kernel's share of a real socket is not here),
so the figures are stable on a busy machine and show what a patch to the hello or
fan-out path buys. ``amber-relay loadtest`` measures the real thing.

Usage::

    python benchmarks/stream_bench.py [--connections 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from typing import Any

import numpy as np

from amber_relay import geodata, ingest
from amber_relay.agencies import Agency
from amber_relay.settings import Settings
from broadcaster.hub import Hub
from broadcaster.stream import Connection, StreamServer

_AGENCY = Agency(id="bench", secret="x", jurisdiction=("US",))
_REQUEST = (
    b"GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1:8001\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: YW1iZXItcmVsYXktbG9hZA==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)


class FakeTransport:
    """Just enough of an asyncio transport: counts what is written."""

    __slots__ = ("closed", "written")

    def __init__(self) -> None:
        self.written = 0
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def masked_text(payload: bytes) -> bytes:
    """A client text frame with a zero mask (what the load generator sends)."""
    n = len(payload)
    head = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0xFE]) + n.to_bytes(2, "big")
    return head + b"\0\0\0\0" + payload


def record(ident: str, same: str, settings: Settings, geo: geodata.GeoData) -> Any:
    """A validated alert record on a county, as the worker would store it."""
    doc = {
        "identifier": ident,
        "status": "actual",
        "headline": "AMBER Alert: bench",
        "expires": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 3600)),
        "area": {"same": [same]},
        "description": "x" * 600,
    }
    alert = ingest.parse_json(json.dumps(doc).encode())
    return ingest.validate(alert, _AGENCY, geo, settings, now=time.time()).record


def run_round(n: int, geo: geodata.GeoData, settings: Settings, seed: int) -> dict[str, float]:
    """Connect ``n`` fake clients (90 % inside Harris), then publish one alert on Harris."""
    hub = Hub(geo, cell_deg=settings.grid_deg)
    hub.publish(record("BENCH-FAR", "002020", settings, geo))  # one unrelated active alert
    server = StreamServer(hub, settings, node="bench:1")
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = geo.counties["48201"].bounds
    lats = rng.uniform(y0 - 0.05, y1 + 0.05, n).round(6).tolist()
    lons = rng.uniform(x0 - 0.05, x1 + 0.05, n).round(6).tolist()
    hellos = [
        masked_text(json.dumps({"type": "hello", "lat": a, "lon": b}).encode())
        for a, b in zip(lats, lons, strict=True)
    ]
    conns: list[Connection] = []
    gc.collect()
    t0 = time.perf_counter()
    for hello in hellos:
        c = server.protocol_factory()
        c.connection_made(FakeTransport())  # type: ignore[arg-type]
        c.data_received(_REQUEST)
        c.data_received(hello)
        conns.append(c)
    t_hello = time.perf_counter() - t0
    ok = sum(1 for c in conns if c.hello_done)
    alert = record("BENCH-HARRIS", "048201", settings, geo)
    t0 = time.perf_counter()
    sent = hub.publish(alert)
    t_publish = time.perf_counter() - t0
    active = hub.alerts["BENCH-HARRIS"]
    t0 = time.perf_counter()
    hub.index.match(active.area, active.regions, {})  # cold: cells classified again
    t_match = time.perf_counter() - t0
    matched = hub.alerts["BENCH-HARRIS"]
    t0 = time.perf_counter()
    hub._send_all(matched.got, matched.frame)  # the bare write loop, no matching
    t_send = time.perf_counter() - t0
    return {
        "hello_us": t_hello / n * 1e6,
        "hellos_ok": ok,
        "publish_ms": t_publish * 1e3,
        "match_ms": t_match * 1e3,
        "sent": sent,
        "send_loop_us": t_send / max(1, sent) * 1e6,
        "publish_us_per_sent": t_publish / max(1, sent) * 1e6,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--connections", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--grid-deg", type=float, default=Settings().grid_deg, help="AMBER_GRID_DEG")
    args = p.parse_args()
    geo = geodata.load()
    geo.counties_intersecting((0.0, 0.0, 0.0, 0.0))  # build the county index up front
    # Fake transports have no peer address: all connections count as one address.
    settings = Settings(grid_deg=args.grid_deg, stream_max_connections_per_address=10**9)
    rounds = [run_round(args.connections, geo, settings, seed) for seed in range(args.rounds)]
    for key in rounds[0]:
        vals = [r[key] for r in rounds]
        print(f"{key:>22}: median {statistics.median(vals):10.2f}   all {vals}")
    hello = statistics.median(r["hello_us"] for r in rounds)
    print(f"handshake+hello Python ceiling: {1e6 / hello:,.0f}/s per process")


if __name__ == "__main__":
    main()
