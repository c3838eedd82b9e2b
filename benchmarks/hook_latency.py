"""Hook-to-frame latency on loopback: POST a signed alert, time until a client has it.

Starts ``amber-relay run`` (private Redis, API, stream, worker in one process) as a
child, connects one client inside the area, and posts N versions of one alert; each
sample is "request sent" -> "interrupt received". Prints the median and spread.

    .venv/bin/python benchmarks/hook_latency.py --samples 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from amber_relay.agencies import load_agencies  # noqa: E402
from amber_relay.redis_server import free_port  # noqa: E402
from tests.support import Agency as AgencyRef  # noqa: E402
from tests.support import ServerProcess, alert_doc, signed, square  # noqa: E402


async def main(samples: int) -> dict[str, float]:
    data = Path(tempfile.mkdtemp(prefix="amber-latency-"))
    env = {"AMBER_PORT": str(free_port()), "AMBER_STREAM_PORT": str(free_port())}
    proc = ServerProcess(["run", "--data-dir", str(data)], env)
    try:
        ready = await proc.wait_ready()
        demo = load_agencies(data / "agencies.toml")["demo"]
        agency = AgencyRef(demo.id, demo.secret)
        lat, lon = 29.42, -98.49
        async with (
            connect(ready["stream_url"], compression=None) as ws,
            httpx.AsyncClient(base_url=ready["api_url"], timeout=10) as http,
        ):
            await ws.send(json.dumps({"type": "hello", "lat": lat, "lon": lon}))
            json.loads(await ws.recv())  # welcome
            latencies: list[float] = []
            for i in range(samples + 2):  # two warm-up rounds
                doc = alert_doc("BENCH-LAT", polygon=square(lat, lon, 0.1), headline=f"v{i}")
                t0 = time.perf_counter()
                r = await signed(http, "POST", "/v1/alerts", agency, doc)
                if r.status_code != 202:
                    raise SystemExit(f"POST failed: {r.status_code} {r.text}")
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    if frame["type"] == "interrupt":
                        break
                if i >= 2:
                    latencies.append((time.perf_counter() - t0) * 1000)
    finally:
        proc.stop()
    latencies.sort()
    return {
        "samples": len(latencies),
        "median_ms": statistics.median(latencies),
        "p90_ms": latencies[int(0.9 * (len(latencies) - 1))],
        "min_ms": latencies[0],
        "max_ms": latencies[-1],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20)
    result = asyncio.run(main(parser.parse_args().samples))
    print(json.dumps({k: round(v, 1) for k, v in result.items()}))
