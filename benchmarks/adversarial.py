"""Adversarial alerts: what the worst accepted (or refused) shapes cost.

For each shape at the configured limits (stars, a sun of thin spikes, a spiral, a
comb, many holes, stacked polygons, many circles, many SAME codes):

1. **ingest**: ``ingest.validate`` in a fresh child process (geodata loaded and a small
   alert validated first: first-use caches are not counted): CPU seconds, peak memory
   above the process's size before, outcome.
   ``--jurisdiction 48`` (Texas) makes the jurisdiction check part of the cost.
2. **live**: ``amber-relay run`` as a child process; the shape is posted through the
   signed hook while, at the same moment, a normal alert is posted for a client in San
   Antonio. Printed: the normal alert's post -> frame latency (goal < 1 s), when a
   client inside the shape got it (accepted shapes), and the broadcaster's event-loop
   lag over that window, measured as WebSocket ping -> pong round trips of probe
   sockets every 5 ms (goal p99 <= 50 ms).

    .venv/bin/python benchmarks/adversarial.py            # both parts, every shape
    .venv/bin/python benchmarks/adversarial.py --only star3000 --skip-live
    .venv/bin/python benchmarks/adversarial.py --skip-ingest --skip-live --publish 300000

``--publish N`` adds, in process, ``Hub.publish`` of each accepted shape against N
sockets spread uniformly over the US (a fake transport): what applying it costs a
broadcaster's loop, fan-out to the sockets inside included.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from amber_relay import geodata, ingest  # noqa: E402
from amber_relay.agencies import Agency, load_agencies  # noqa: E402
from amber_relay.errors import Rejected  # noqa: E402
from amber_relay.redis_server import free_port  # noqa: E402
from amber_relay.settings import Settings  # noqa: E402
from benchmarks.match_bench import Point  # noqa: E402
from tests.support import Agency as AgencyRef  # noqa: E402
from tests.support import ServerProcess, alert_doc, signed, square  # noqa: E402

Ring = list[list[float]]
LAT, LON = 31.0, -99.5  # central Texas: the shapes' centre
CLIENT = (29.42, -98.49)  # San Antonio: the normal alert's client, outside every shape
_JSON = "application/json"


def _closed(pts: list[tuple[float, float]]) -> Ring:
    return [[lon, lat] for lon, lat in pts] + [[pts[0][0], pts[0][1]]]


def star(n: int, r: float = 1.0) -> Ring:
    """An n-pointed star {n/k}, k ~ n/2: every edge crosses most others."""
    k = n // 2 - 1 if n % 2 == 0 else n // 2
    step = 2 * math.pi * k / n
    return _closed([(LON + r * math.cos(i * step), LAT + r * math.sin(i * step)) for i in range(n)])


def sun(n: int, r: float = 1.0) -> Ring:
    """A simple (valid) ring of n/2 thin spikes: edges' boxes all overlap at the centre."""
    pts = []
    for i in range(n):
        a, rr = 2 * math.pi * i / n, (r if i % 2 else r / 1000)
        pts.append((LON + rr * math.cos(a), LAT + rr * math.sin(a)))
    return _closed(pts)


def spiral(n: int, turns: float = 20.0, r: float = 1.5, width: float = 0.02) -> Ring:
    """A band along an Archimedean spiral (valid): n vertices, out along one edge, back."""
    half = n // 2
    pitch = r / turns
    out, back = [], []
    for i in range(half):
        t = 2 * math.pi * turns * i / (half - 1)
        rr = pitch * t / (2 * math.pi) + 0.05
        out.append((LON + (rr + width) * math.cos(t), LAT + (rr + width) * math.sin(t)))
        back.append((LON + rr * math.cos(t), LAT + rr * math.sin(t)))
    return _closed(out + back[::-1])


def comb(n: int, span: float = 2.0) -> Ring:
    """A comb of n/4 teeth on a bar (valid)."""
    teeth = (n - 4) // 4
    w = span / teeth
    pts = [(LON - 1 + span, LAT - 0.1), (LON - 1, LAT - 0.1)]
    for i in range(teeth):
        x = LON - 1 + i * w
        pts += [(x, LAT), (x, LAT + 1), (x + w / 2, LAT + 1), (x + w / 2, LAT)]
    return _closed(pts)


def holes(n: int) -> list[Ring]:
    """A square shell with (n - 5) / 4 triangular holes on a grid (valid)."""
    count = (n - 5) // 4
    side = math.ceil(math.sqrt(count))
    d = 2.0 / side
    rings = [
        _closed([(LON - 1, LAT - 1), (LON + 1, LAT - 1), (LON + 1, LAT + 1), (LON - 1, LAT + 1)])
    ]
    for i in range(count):
        x, y = LON - 1 + (i % side + 0.2) * d, LAT - 1 + (i // side + 0.2) * d
        rings.append(_closed([(x, y), (x + d / 2, y), (x, y + d / 2)]))
    return rings


def ngon(lat: float, lon: float, r: float, n: int) -> Ring:
    return _closed(
        [
            (lon + r * math.cos(2 * math.pi * i / n), lat + r * math.sin(2 * math.pi * i / n))
            for i in range(n)
        ]
    )


def poly(rings: list[Ring]) -> dict[str, Any]:
    return {"geometry": {"type": "Polygon", "coordinates": rings}}


def multi(polys: list[list[Ring]]) -> dict[str, Any]:
    return {"geometry": {"type": "MultiPolygon", "coordinates": polys}}


def shapes(
    s: Settings, geo: geodata.GeoData
) -> dict[str, tuple[dict[str, Any], tuple[float, float] | None]]:
    """name -> (area of the alert, a point inside it or None if it should be refused)."""
    v, p = s.max_vertices, s.max_polygons
    per = v // p - 1
    texas = sorted(c for c in geo.counties if c.startswith("48"))
    near = sorted(c for c in geo.counties if c[:2] in ("40", "22", "05", "35", "20"))
    corners = [(48.0, -124.0), (47.0, -68.0), (25.5, -80.5), (32.7, -117.0)]  # on land
    return {
        "star3000": (poly([star(3000)]), None),
        "star20000": (poly([star(v - 1)]), None),
        "star_repairable": (poly([star(141)]), (LAT, LON)),
        "sun20000": (poly([sun(v - 1)]), None),
        "sun2000": (poly([sun(2000)]), (LAT, LON)),
        "spiral20000": (poly([spiral(v - 1)]), (LAT, LON + 0.06)),
        "comb20000": (poly([comb(v - 1)]), None),
        "comb1600": (poly([comb(1600)]), (LAT + 0.5, LON - 1 + 0.0001)),
        "holes20000": (poly(holes(v)), (LAT - 0.999, LON - 0.999)),
        "polygons_stacked": (multi([[ngon(LAT, LON, 1.0, per)] for _ in range(p)]), None),
        "polygons_overlapping": (
            multi([[ngon(LAT + 0.01 * i, LON + 0.01 * i, 1.0, per)] for i in range(p)]),
            (LAT, LON),
        ),
        "circles_corners": (
            {
                "circles": [
                    {
                        "lat": corners[i % 4][0] + 0.001 * i,
                        "lon": corners[i % 4][1],
                        "radius_km": 0.1,
                    }
                    for i in range(s.max_circles)
                ]
            },
            corners[0],
        ),
        "circles_900km": (
            {
                # 1,000 km reaches past the US (Lake Michigan, Mexico) from anywhere in it
                "circles": [
                    {
                        "lat": 39 + 0.3 * math.sin(i),
                        "lon": -98 + 0.5 * math.cos(i),
                        "radius_km": min(900.0, s.max_radius_km),
                    }
                    for i in range(s.max_circles)
                ]
            },
            (LAT, LON),
        ),
        "circles_texas": (
            {
                "circles": [
                    {"lat": LAT + math.sin(i), "lon": LON + math.cos(i), "radius_km": 80.0}
                    for i in range(s.max_circles)
                ]
            },
            (LAT, LON + 1.0),
        ),
        "same_texas": ({"same": [f"0{c}" for c in texas]}, (LAT, LON)),
        "same_500": ({"same": [f"0{c}" for c in (texas + near)[: s.max_same_codes]]}, (LAT, LON)),
        # A whole state of ~100,000 vertices across 180 deg, widened (cold in the process).
        "same_alaska": ({"same": ["002000"]}, (61.218, -149.9)),
    }


# -- ingest: one shape in a fresh child process ---------------------------------------


def _rss_kb() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * (resource.getpagesize() // 1024)


def ingest_one(name: str, jurisdiction: list[str]) -> dict[str, Any]:
    s = Settings()
    geo = geodata.load()
    geo.counties_touching(None, [])  # build the county index: not the alert's cost
    area, _ = shapes(s, geo)[name]
    body = json.dumps(_doc("ADV-" + name, area)).encode()
    agency = Agency(id="bench", secret="x" * 32, jurisdiction=tuple(jurisdiction))
    # First-use costs (cached jurisdiction outlines, county index) are not the alert's.
    warm = json.dumps(alert_doc("WARM", polygon=square(LAT, LON, 0.1))).encode()
    ingest.validate(ingest.parse_json(warm), agency, geo, s, now=time.time())
    before_kb, before = _rss_kb(), resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    try:
        v = ingest.validate(ingest.parse_json(body), agency, geo, s, now=time.time())
        outcome = f"accepted ({len(v.record.regions or [])} counties, {len(v.warnings)} warnings)"
    except Rejected as exc:
        outcome = f"{exc.status} {exc.code}: {exc.reason[:90]}"
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {
        "shape": name,
        "body_kb": round(len(body) / 1024),
        "cpu_s": round(cpu, 3),
        "wall_s": round(time.perf_counter() - t0, 3),
        "peak_extra_mb": round(max(0, after.ru_maxrss - before_kb) / 1024, 1),
        "outcome": outcome,
    }


def _doc(ident: str, area: dict[str, Any]) -> dict[str, Any]:
    doc = alert_doc(ident)
    doc["area"] = area
    return doc


def run_ingest(names: list[str], jurisdiction: str) -> list[dict[str, Any]]:
    rows = []
    for name in names:
        res = subprocess.run(
            [sys.executable, __file__, "--child", name, "--jurisdiction", jurisdiction],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=str(ROOT),
        )
        if res.returncode != 0:
            rows.append({"shape": name, "outcome": f"child failed: {res.stderr.strip()[-200:]}"})
        else:
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    return rows


# -- live: a running system, a normal alert at the same moment ------------------------


async def _probe(ws: ClientConnection, offset: float, out: list[tuple[float, float]]) -> None:
    await asyncio.sleep(offset)
    while True:
        t0 = time.perf_counter()
        waiter = await ws.ping()
        await waiter
        t1 = time.perf_counter()
        out.append((t0, (t1 - t0) * 1000))
        await asyncio.sleep(max(0.0, 0.02 - (t1 - t0)))


async def _probes(url: str) -> None:
    """4 probe sockets pinging, each ping's (perf_counter, ms) printed (until killed).

    perf_counter is CLOCK_MONOTONIC on Linux: comparable with the parent's."""
    probes = [await connect(url, compression=None) for _ in range(4)]
    for ws in probes:
        await ws.send(json.dumps({"type": "hello", "lat": 0.0, "lon": 0.0}))
        await ws.recv()
    lags: list[tuple[float, float]] = []
    tasks = [asyncio.create_task(_probe(ws, i * 0.005, lags)) for i, ws in enumerate(probes)]
    print("ready", flush=True)
    while True:
        await asyncio.sleep(0.05)
        for t, lag in lags:
            print(f"{t} {lag}", flush=True)
        lags.clear()
        if any(t.done() for t in tasks):
            return


def _start_prober(url: str, out: list[tuple[float, float]]) -> subprocess.Popen[str]:
    """The probe process, once its sockets are connected; ``out`` fills as it pings."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--probe", url], stdout=subprocess.PIPE, text=True
    )
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            parts = line.split()
            if len(parts) == 2:
                out.append((float(parts[0]), float(parts[1])))
            elif parts == ["ready"]:
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    ready.wait(60)
    return proc


async def _interrupt(ws: ClientConnection, alert_id: str) -> float:
    while True:
        frame = json.loads(await ws.recv())
        # Public ids are "<agency>/<identifier>".
        if frame["type"] == "interrupt" and frame["alert"]["id"].endswith("/" + alert_id):
            return time.perf_counter()


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


async def run_live(names: list[str]) -> list[dict[str, Any]]:
    data = Path(tempfile.mkdtemp(prefix="amber-adversarial-"))
    env = {
        "AMBER_PORT": str(free_port()),
        "AMBER_STREAM_PORT": str(free_port()),
        # The probes ping every 20 ms: far over a phone's allowance (1/s), on purpose.
        "AMBER_STREAM_PING_RATE_PER_S": "1000",
        "AMBER_STREAM_RATE_BURST": "1000",
    }
    proc = ServerProcess(["run", "--data-dir", str(data)], env)
    geo = geodata.load()
    table = shapes(Settings(), geo)
    rows: list[dict[str, Any]] = []
    try:
        ready = await proc.wait_ready()
        demo = load_agencies(data / "agencies.toml")["demo"]
        agency = AgencyRef(demo.id, demo.secret)
        url = ready["stream_url"]
        lags: list[tuple[float, float]] = []
        async with httpx.AsyncClient(base_url=ready["api_url"], timeout=60) as http:
            # The probes run in a process of their own: on this loop they would count
            # this process's stalls (posting an 800 KB body: ~50 ms) as the broadcaster's.
            prober = await asyncio.to_thread(_start_prober, url, lags)
            client = await connect(url, compression=None)
            await client.send(json.dumps({"type": "hello", "lat": CLIENT[0], "lon": CLIENT[1]}))
            await client.recv()
            for n, name in enumerate(names):
                area, witness_at = table[name]
                witness = None
                if witness_at is not None:
                    witness = await connect(url, compression=None)
                    await witness.send(
                        json.dumps({"type": "hello", "lat": witness_at[0], "lon": witness_at[1]})
                    )
                    await witness.recv()
                adv = _doc(f"ADV-{n}-{name}", area)
                normal = alert_doc(f"NORMAL-{n}", polygon=square(*CLIENT, 0.05))
                # Encoded before the window: json.dumps of an 800 KB area takes this
                # process's loop 50-70 ms, and the probes (on this loop) would count
                # that stall as the broadcaster's lag.
                adv_body, normal_body = json.dumps(adv).encode(), json.dumps(normal).encode()
                await asyncio.sleep(0.3)
                start = time.perf_counter()
                got_normal = asyncio.create_task(_interrupt(client, f"NORMAL-{n}"))
                got_adv = (
                    asyncio.create_task(_interrupt(witness, adv["identifier"])) if witness else None
                )
                r_adv, r_normal = await asyncio.gather(
                    signed(http, "POST", "/v1/alerts", agency, adv_body, content_type=_JSON),
                    signed(http, "POST", "/v1/alerts", agency, normal_body, content_type=_JSON),
                )
                answered = time.perf_counter()
                t_normal = await asyncio.wait_for(got_normal, 30)
                t_adv = (
                    await asyncio.wait_for(got_adv, 30)
                    if got_adv and r_adv.status_code == 202
                    else None
                )
                if got_adv is not None and not got_adv.done():
                    got_adv.cancel()
                end = max(answered, t_normal, t_adv or 0) + 0.2
                await asyncio.sleep(max(0.0, end - time.perf_counter()))
                window = [lag for t, lag in lags if start <= t <= end]
                row = {
                    "shape": name,
                    "hook": f"{r_adv.status_code} {r_adv.json().get('code', '')}".strip(),
                    "hook_s": round(answered - start, 3),
                    "normal_alert_ms": round((t_normal - start) * 1000),
                    "shape_delivered_ms": round((t_adv - start) * 1000) if t_adv else None,
                    "lag_p50_ms": round(_pct(window, 0.5), 1),
                    "lag_p99_ms": round(_pct(window, 0.99), 1),
                    "lag_max_ms": round(max(window, default=float("nan")), 1),
                    "pings": len(window),
                }
                assert r_normal.status_code == 202, r_normal.text
                rows.append(row)
                print(json.dumps(row), flush=True)
                if witness is not None:
                    await witness.close()
            prober.terminate()
            prober.wait(10)
            await client.close()
    finally:
        proc.stop()
    return rows


# -- publish: Hub.publish of each accepted shape against N sockets, in process -------


def run_publish(names: list[str], sockets: int) -> None:
    """What applying each shape costs a broadcaster's loop: sockets uniform over the US."""
    import random

    import msgspec

    from broadcaster.hub import Hub

    s, geo = Settings(), geodata.load()
    table = shapes(s, geo)
    rng = random.Random(1)
    socks = [Point(rng.uniform(25, 49), rng.uniform(-124, -67)) for _ in range(sockets)]
    agency = Agency(id="bench", secret="x" * 32, jurisdiction=("US",))
    for name in names:
        body = json.dumps(_doc("PUB-" + name, table[name][0])).encode()
        try:
            v = ingest.validate(ingest.parse_json(body), agency, geo, s, now=time.time())
        except Rejected:
            continue
        record = msgspec.structs.replace(v.record, version=1)
        hub = Hub(geo, cell_deg=s.grid_deg)
        for sock in socks:
            hub.index.add(sock)
        t0 = time.perf_counter()
        sent = hub.publish(record)
        t1 = time.perf_counter()
        for sock in socks[:2000]:
            hub.answer(sock.lat, sock.lon, None, [])
        t2 = time.perf_counter()
        row = {
            "shape": name,
            "sockets": sockets,
            "sent": sent,
            "publish_ms": round((t1 - t0) * 1000, 1),
            "hello_answer_us": round((t2 - t1) / 2000 * 1e6, 1),
        }
        print(json.dumps(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="shape name (repeatable)")
    parser.add_argument("--skip-live", action="store_true")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--jurisdiction", default="US", help="ingest agency's, e.g. US or 48")
    parser.add_argument("--publish", type=int, metavar="N", help="also Hub.publish vs N sockets")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        asyncio.run(_probes(args.probe))
        return
    if args.child:
        print(json.dumps(ingest_one(args.child, args.jurisdiction.split(","))))
        return
    names = args.only or list(shapes(Settings(), geodata.load()))
    if not args.skip_ingest:
        print(f"# ingest (fresh process per shape, jurisdiction {args.jurisdiction})", flush=True)
        run_ingest(names, args.jurisdiction)
    if args.publish:
        print(f"# publish (in process, {args.publish} sockets uniform over the US)", flush=True)
        run_publish(names, args.publish)
    if not args.skip_live:
        print("# live (amber-relay run; a normal alert posted at the same moment)", flush=True)
        asyncio.run(run_live(names))


if __name__ == "__main__":
    main()
