"""What the county data costs: memory and start-up of serving processes, SAME resolution.

Starts a private redis-server, then ``amber-relay serve`` and ``amber-relay worker`` as
child processes (with ``--python``, another checkout's interpreter, to compare), and
reports:

- start-up: seconds from spawning ``serve`` to its ready line;
- RSS (and PSS, the process's share of pages it shares) of the idle ``serve``;
- RSS/PSS of ``serve`` (the hook runs there) and of the worker after posting SAME alerts
  for one county (Harris, 048201), a whole state (048000 Texas) and 8 more counties;
- in this process: the time to resolve 048201 and 048000 (first time, then cached).

Usage::

    python benchmarks/geodata_bench.py [--python PATH] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from amber_relay.redis_server import RedisServer
from amber_relay.signing import signature_header

SAME = ["048201", "048000", "006037", "017031", "004013", "012086", "036047", "053033"]


def memory_kb(pid: int) -> dict[str, int]:
    """RSS and PSS of a process in kB (/proc/PID/smaps_rollup)."""
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss"):
            out[key.lower() + "_kb"] = int(rest.split()[0])
    return out


def spawn(python: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [python, "-m", "amber_relay.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
    )


def wait_ready(proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> dict[str, Any]:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline().decode(errors="replace")
        if not line:
            break
        if line.startswith('{"event": "ready"'):
            ready: dict[str, Any] = json.loads(line)
            return ready
    raise SystemExit(f"serve not ready (exit {proc.poll()})")


def post(api: str, agency: str, secret: str, doc: dict[str, Any]) -> int:
    raw = json.dumps(doc).encode()
    stamp = int(time.time())
    req = urllib.request.Request(
        api + "/v1/alerts",
        data=raw,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-Amber-Agency": agency,
            "X-Amber-Signature": signature_header(secret, stamp, "POST", "/v1/alerts", raw),
        },
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return int(r.status)


def resolve_times() -> dict[str, float]:
    from amber_relay import geodata

    t0 = time.perf_counter()
    gd = geodata.load()
    out = {"load_ms": (time.perf_counter() - t0) * 1e3}
    for code in ("048201", "048000"):
        for run in ("first", "cached"):
            t0 = time.perf_counter()
            gd.resolve_same([code])
            out[f"resolve_{code}_{run}_ms"] = (time.perf_counter() - t0) * 1e3
    return {k: round(v, 2) for k, v in out.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--python", default=sys.executable, help="interpreter of the checkout")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer(tmp, appendonly=False)
        redis.start()
        secret = secrets.token_hex(16)
        agencies = Path(tmp) / "agencies.toml"
        agencies.write_text(f'[agencies.ncmec]\nsecret = "{secret}"\njurisdiction = ["US"]\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith("AMBER_")}
        env |= {"AMBER_REDIS_URL": redis.url, "AMBER_AGENCIES_FILE": str(agencies)}
        procs = []
        try:
            t0 = time.perf_counter()
            serve = spawn(args.python, ["serve", "--port", "0", "--stream-port", "0"], env)
            procs.append(serve)
            ready = wait_ready(serve)
            results["startup_s"] = round(time.perf_counter() - t0, 3)
            worker = spawn(args.python, ["worker"], env)
            procs.append(worker)
            time.sleep(3.0)  # settle (the worker prints no ready line)
            results["serve_idle"] = memory_kb(serve.pid)
            results["worker_idle"] = memory_kb(worker.pid)
            expires = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 3600))
            for i, code in enumerate(SAME):
                doc = {
                    "identifier": f"bench-{i}",
                    "status": "actual",
                    "headline": "AMBER Alert: bench",
                    "expires": expires,
                    "area": {"same": [code]},
                }
                assert post(ready["api_url"], "ncmec", secret, doc) == 202
            time.sleep(3.0)  # the worker applies queued versions within its poll delay
            results["serve_after_same"] = memory_kb(serve.pid)
            results["worker_after_same"] = memory_kb(worker.pid)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)
            redis.stop()
    results |= resolve_times()
    if args.json:
        print(json.dumps(results))
        return
    for key, value in results.items():
        print(f"{key:>28}: {value}")


if __name__ == "__main__":
    main()
