"""Redis commands per alert and per broadcaster process (INFO commandstats, private Redis).

Starts a private redis-server, ``amber-relay worker`` and B ``amber-relay serve``
processes, then measures from ``INFO commandstats`` deltas:

- idle: commands per second of the worker alone, then of each broadcaster added;
- per hello: commands per client connecting and sending hello (answered from memory);
- per alert: commands per accepted alert (hook, fast apply, the worker's job, every
  broadcaster's stream read), with 1 and with 2 broadcasters, so the per-broadcaster
  share of an alert is the difference.

    .venv/bin/python benchmarks/redis_commands.py --alerts 40 --idle-s 10 --clients 200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from redis.asyncio import Redis
from websockets.asyncio.client import connect

from amber_relay.redis_server import RedisServer
from amber_relay.signing import signature_header

Stats = dict[str, int]


async def commandstats(redis: Redis) -> Stats:
    raw = await redis.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in raw.items()}


def delta(after: Stats, before: Stats) -> Stats:
    out = {k: v - before.get(k, 0) for k, v in after.items()}
    # zcard is this script's own wait for the queue to drain.
    return {k: v for k, v in sorted(out.items()) if v > 0 and k not in ("info", "zcard")}


class Child:
    """``amber-relay <args>``; ``ready`` waits for its JSON ready line (serve only)."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "amber_relay.cli", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.ready: dict[str, str] = {}
        self._event = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace")
            if line.startswith('{"event": "ready"'):
                self.ready = json.loads(line)
                self._event.set()
        self._event.set()

    def wait(self, timeout_s: float = 60) -> dict[str, str]:
        if not self._event.wait(timeout_s) or not self.ready:
            raise SystemExit(f"process not ready: {self.proc.args!r}")
        return self.ready

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@contextmanager
def children(args_list: list[list[str]], env: dict[str, str]) -> Iterator[list[Child]]:
    started = [Child(a, env) for a in args_list]
    try:
        yield started
    finally:
        for c in started:
            c.stop()


async def post_alerts(api_url: str, secret: str, n: int, tag: str) -> None:
    async with httpx.AsyncClient(base_url=api_url, timeout=10) as http:
        for i in range(n):
            expires = datetime.now(UTC) + timedelta(hours=1)
            doc = {
                "identifier": f"BENCH-{tag}-{i}",
                "status": "actual",
                "headline": "AMBER Alert: benchmark",
                "expires": expires.isoformat(timespec="seconds"),
                "area": {"circles": [{"lat": 29.42, "lon": -98.49, "radius_km": 5}]},
            }
            body = json.dumps(doc).encode()
            sig = signature_header(secret, int(time.time()), "POST", "/v1/alerts", body)
            r = await http.post(
                "/v1/alerts",
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "X-Amber-Agency": "bench",
                    "X-Amber-Signature": sig,
                },
            )
            r.raise_for_status()


async def hellos(stream_url: str, n: int) -> None:
    """Connect ``n`` clients, each sending hello and reading its welcome, then close."""
    socks = []
    for i in range(n):
        ws = await connect(stream_url, compression=None)
        await ws.send(json.dumps({"type": "hello", "lat": 29.42, "lon": -98.49 + i * 1e-4}))
        await ws.recv()
        socks.append(ws)
    for ws in socks:
        await ws.close()


async def settle(redis: Redis, quiet_s: float = 1.5) -> None:
    """Until no apply job is queued and the stats flush had time to run."""
    for _ in range(100):
        if await redis.zcard("bench:queue") == 0:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(quiet_s)


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--alerts", type=int, default=40)
    p.add_argument("--idle-s", type=float, default=10.0)
    p.add_argument("--clients", type=int, default=200, help="clients for the hello phase")
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="amber-bench-redis-"))
    server = RedisServer(tmp / "redis", appendonly=False)
    server.start()
    secret = secrets.token_hex(16)
    agencies = tmp / "agencies.toml"
    agencies.write_text(f'[agencies.bench]\nsecret = "{secret}"\njurisdiction = ["48"]\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMBER_")}
    env.update(
        AMBER_REDIS_URL=server.url,
        AMBER_REDIS_PREFIX="bench:",
        AMBER_AGENCIES_FILE=str(agencies),
        AMBER_RETENTION_S="3600",
    )
    redis = Redis.from_url(server.url)
    results: dict[str, object] = {}
    try:
        with children([["worker"]], env):
            await asyncio.sleep(2)
            before = await commandstats(redis)
            await asyncio.sleep(a.idle_s)
            worker_idle = delta(await commandstats(redis), before)
            results["worker idle, commands/s"] = round(sum(worker_idle.values()) / a.idle_s, 1)
            results["worker idle, by command"] = worker_idle
            for b in (1, 2):
                serve = ["serve", "--port", "0", "--stream-port", "0"]
                with children([serve] * b, env) as serves:
                    ready = [s.wait() for s in serves]
                    await settle(redis)
                    before = await commandstats(redis)
                    await asyncio.sleep(a.idle_s)
                    idle = delta(await commandstats(redis), before)
                    per_s = (sum(idle.values()) - sum(worker_idle.values())) / a.idle_s
                    results[f"{b} broadcaster(s) idle, commands/s beyond the worker"] = round(
                        per_s, 1
                    )
                    before = await commandstats(redis)
                    t0 = time.monotonic()
                    await post_alerts(ready[0]["api_url"], secret, a.alerts, f"b{b}")
                    await settle(redis)
                    took = time.monotonic() - t0
                    used = delta(await commandstats(redis), before)
                    idle_share = sum(idle.values()) / a.idle_s * took
                    total = sum(used.values())
                    results[f"{b} broadcaster(s): commands per alert (idle traffic removed)"] = (
                        round((total - idle_share) / a.alerts, 1)
                    )
                    results[f"{b} broadcaster(s): by command, per alert (idle included)"] = {
                        k: round(v / a.alerts, 2) for k, v in used.items()
                    }
                    if b == 1:
                        before = await commandstats(redis)
                        t0 = time.monotonic()
                        await hellos(ready[0]["stream_url"], a.clients)
                        took = time.monotonic() - t0
                        used = delta(await commandstats(redis), before)
                        extra = sum(used.values()) - sum(idle.values()) / a.idle_s * took
                        results[f"commands per client hello ({a.clients} clients)"] = round(
                            max(0.0, extra) / a.clients, 3
                        )
                        results["hello phase, by command (idle included)"] = used
    finally:
        await redis.aclose()
        server.stop()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
