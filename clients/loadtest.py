"""``amber-relay loadtest``: many WebSocket clients, one alert, latency and exactness.

Opens N clients from several load processes (each with its own 127.0.0.x source
address, so N can pass one address's ephemeral ports), places them inside and around
a county, posts a signed alert on that county and reports, per system under test:

- the connect rate (handshake + hello + welcome per second) and the broadcaster's RSS
  per connection (VmRSS of each server process before and after connecting);
- hook -> frame latency over every matching client (first, p50, p99, last), where the
  hook time is taken just before the alert's request is sent;
- delivered vs expected, false positives (outside clients that got it) and false
  negatives (inside clients that did not), which must both be 0. A last "sentinel"
  alert covers everyone: a socket's frames arrive in order, so a client holding the
  sentinel but not an alert provably never got that alert.

``--target raw|naive|all`` also runs the baselines of ``benchmarks/`` in the same
invocation (a bare uvloop floor and a naive Starlette loop, triggered by
``POST /publish``); they are sent only the matching clients, so every system writes
the same number of frames, and the report ends with the ratios amber/raw and
amber/naive, which are what compare across machines. A JSON record and a PNG latency
CDF go to ``--out`` (``benchmarks/results`` by default).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import secrets
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from ._load_geo import Placement, place, sentinel_doc
from ._load_report import (
    AlertFigures,
    TargetFigures,
    alert_figures,
    print_table,
    rss_table,
    save,
)
from ._load_system import ROOT, AmberTarget, BaselineTarget, Child, Target, files_limit, rss_kb

__all__ = ["HELP", "add_arguments", "run"]

HELP = "open N clients in and around a county, post an alert, report latency and exactness"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``loadtest`` subcommand's flags."""
    p.add_argument("--clients", type=int, default=1000, help="clients in all (default 1000)")
    p.add_argument(
        "--inside-fraction",
        type=float,
        default=0.95,
        help="share of the clients placed inside the county (default 0.95)",
    )
    p.add_argument("--county", default="48201", help="5-digit county FIPS (default Harris, TX)")
    p.add_argument(
        "--target",
        default="amber",
        help="amber, raw, naive, a comma list of them, or all = raw,naive,amber (default amber)",
    )
    p.add_argument("--processes", type=int, default=1, help="broadcaster processes (amber)")
    p.add_argument(
        "--load-processes",
        type=int,
        default=0,
        help="load-generator processes (default: one per 10,000 clients)",
    )
    p.add_argument(
        "--concurrency", type=int, default=100, help="handshakes in flight per load process"
    )
    p.add_argument("--repeat", type=int, default=2, help="alerts per target; medians are reported")
    p.add_argument("--frame-bytes", type=int, default=1024, help="size of the alert frame")
    p.add_argument("--stalled", type=int, default=0, help="inside clients that never read")
    p.add_argument("--write-limit-bytes", type=int, help="AMBER_WRITE_LIMIT_BYTES of the server")
    p.add_argument(
        "--ping-interval-s",
        type=float,
        default=300.0,
        help="AMBER_PING_INTERVAL_S of the private deployment: keepalive sweeps kept off"
        " the measured path (default 300)",
    )
    p.add_argument("--source-base", default="127.0.0.2", help="first load source address")
    p.add_argument("--timeout-s", type=float, default=60.0, help="longest wait for one alert")
    p.add_argument("--settle-s", type=float, default=1.0, help="pause between alerts")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.add_argument("--logs", type=Path, help="keep the processes' logs here (default: deleted)")
    p.add_argument("--api-url", help="existing deployment: API base URL (with --stream-url...)")
    p.add_argument("--stream-url", help="existing deployment: ws://host:port/v1/stream")
    p.add_argument("--agency", help="existing deployment: agency id allowed to alert the county")
    p.add_argument("--secret", help="existing deployment: that agency's HMAC secret")


@dataclass
class LoadProc:
    """One load-generator process and what it has told us."""

    child: Child
    first: int
    """Index of its first client in the placement."""
    count: int
    progress: tuple[int, int] = (0, 0)
    connected: asyncio.Future[dict[str, Any]] = field(default_factory=asyncio.Future)
    got: dict[int, asyncio.Event] = field(default_factory=dict)
    reported: asyncio.Future[str] = field(default_factory=asyncio.Future)
    task: asyncio.Task[None] | None = None

    async def pump(self) -> None:
        """Turn the process's event lines into futures; fail them all if it exits."""
        try:
            while True:
                ev = await self.child.next_event(float("inf"))
                kind = ev["event"]
                if kind == "progress":
                    self.progress = (ev["connected"], ev["failed"])
                elif kind == "connected":
                    self.progress = (ev["connected"], ev["failed"])
                    self.connected.set_result(ev)
                elif kind == "got":
                    self.got.setdefault(ev["ident"], asyncio.Event()).set()
                elif kind == "report":
                    self.reported.set_result(ev["path"])
        except RuntimeError as exc:
            for fut in (self.connected, self.reported):
                if not fut.done():
                    fut.set_exception(exc)

    async def wait_got(self, k: int) -> None:
        await self.got.setdefault(k, asyncio.Event()).wait()


def _source(base: str, i: int) -> str:
    a, b, c, d = (int(x) for x in base.split("."))
    n = (a << 24 | b << 16 | c << 8 | d) + i
    return ".".join(str(n >> s & 255) for s in (24, 16, 8, 0))


async def _start_loads(
    args: argparse.Namespace,
    target: Target,
    points: list[tuple[float, float]],
    inside: list[bool],
    stalled: set[int],
    idents: list[str],
    expect: list[str],
    work: Path,
) -> list[LoadProc]:
    from urllib.parse import urlsplit

    url = urlsplit(target.stream_url)
    n_procs = args.load_processes or max(1, math.ceil(len(points) / 10_000))
    per = math.ceil(len(points) / n_procs)
    procs: list[LoadProc] = []
    for i in range(n_procs):
        lo, hi = i * per, min(len(points), (i + 1) * per)
        if lo >= hi:
            break
        child = await Child.start(
            f"{target.name}-load{i}", [sys.executable, "-m", "clients._load_worker"], log_dir=work
        )
        proc = LoadProc(child, lo, hi - lo)
        procs.append(proc)
        job = {
            "host": url.hostname or "127.0.0.1",
            "port": url.port or 80,
            "path": url.path or "/",
            "source": _source(args.source_base, i),
            "points": points[lo:hi],
            "inside": [int(v) for v in inside[lo:hi]],
            "stalled": [j - lo for j in range(lo, hi) if j in stalled],
            "idents": idents,
            "expect": expect,
            "concurrency": args.concurrency,
            "connect_timeout_s": 60,
            "report": str(work / f"{target.name}-load{i}.json"),
        }
        await child.send(job)
        proc.task = asyncio.create_task(proc.pump())
    return procs


async def _show_progress(procs: list[LoadProc], total: int, t0: float) -> None:
    tty = sys.stderr.isatty()
    while True:
        await asyncio.sleep(0.5)
        done = sum(p.progress[0] for p in procs)
        failed = sum(p.progress[1] for p in procs)
        rate = done / max(1e-9, time.monotonic() - t0)
        line = f"connecting: {done:,}/{total:,} ({rate:,.0f}/s), failed {failed:,}"
        print(("\r" + line) if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)


async def measure(
    name: str, args: argparse.Namespace, placement: Placement, work: Path, tag: str
) -> TargetFigures:
    """Start one system, connect, post ``--repeat`` alerts (and the sentinel), collect."""
    amber = name == "amber"
    if amber:
        target: Target = AmberTarget(placement.county, args.frame_bytes)
    else:
        target = BaselineTarget(name, args.frame_bytes)
    # Baselines broadcast to every socket: give them only the matching clients, so
    # every system writes the same number of frames.
    keep = [i for i in range(len(placement.points)) if amber or placement.inside[i]]
    points = [placement.points[i] for i in keep]
    inside = [placement.inside[i] for i in keep]
    rng = np.random.default_rng(args.seed + 7)
    in_idx = [i for i, v in enumerate(inside) if v]
    stalled = {int(i) for i in rng.choice(in_idx, min(args.stalled, len(in_idx)), replace=False)}
    idents = [f"LT-{tag}-{name}-{r + 1}" for r in range(args.repeat)]
    expect = ["inside"] * args.repeat
    if amber:
        idents.append(f"LT-{tag}-sentinel")
        expect.append("all")
    procs: list[LoadProc] = []
    try:
        if isinstance(target, AmberTarget) and args.api_url:
            target.attach(args.api_url, args.stream_url, args.agency, args.secret)
        elif isinstance(target, AmberTarget):
            env = {
                "AMBER_PING_INTERVAL_S": str(args.ping_interval_s),
                # Up to 10,000 clients per load process come from one 127.0.0.x address,
                # as through a load balancer: the per-address cap must not apply.
                "AMBER_STREAM_MAX_CONNECTIONS_PER_ADDRESS": "1000000",
            }
            if args.write_limit_bytes:
                env["AMBER_WRITE_LIMIT_BYTES"] = str(args.write_limit_bytes)
            await target.start(work, processes=args.processes, env=env)
        else:
            assert isinstance(target, BaselineTarget)
            await target.start(work)
        await target.prepare()
        rss_before = {pid: rss_kb(pid) for pid in target.pids}
        print(f"{name}: connecting {len(points):,} clients", file=sys.stderr, flush=True)
        t_conn = time.monotonic()
        procs = await _start_loads(args, target, points, inside, stalled, idents, expect, work)
        ticker = asyncio.create_task(_show_progress(procs, len(points), t_conn))
        try:
            conn = [await p.connected for p in procs]
        finally:
            ticker.cancel()
            print(file=sys.stderr)
        rss_after = {pid: rss_kb(pid) for pid in target.pids}
        timings: list[tuple[float, float]] = []
        for k, ident in enumerate(idents):
            await asyncio.sleep(args.settle_s)
            await target.refresh()
            t0 = time.monotonic()
            if k < args.repeat:
                await target.trigger(ident)
            else:
                assert isinstance(target, AmberTarget)
                await target.post(sentinel_doc(ident, placement.bbox))
            timings.append((t0, time.monotonic()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(args.timeout_s):
                    await asyncio.gather(*(p.wait_got(k) for p in procs))
        for p in procs:
            await p.child.send({"cmd": "report"})
        paths = [await p.reported for p in procs]
        figures = _figures(name, args, target, procs, paths, conn, inside, stalled, idents, timings)
        figures.rss = rss_table(target.pids, rss_before, rss_after, conn)
        counts = [v["conns"] for v in figures.rss.values()]
        deltas = [v["after_kib"] - v["before_kib"] for v in figures.rss.values()]
        figures.rss_kib_per_conn = round(sum(deltas) / sum(counts), 2) if sum(counts) else None
        await target.finish(idents)
        return figures
    finally:
        for p in procs:
            with contextlib.suppress(Exception):
                await p.child.send({"cmd": "quit"})
        for p in procs:
            await p.child.stop()
            if p.task is not None:
                p.task.cancel()
        await target.stop()


def _figures(
    name: str,
    args: argparse.Namespace,
    target: Target,
    procs: list[LoadProc],
    paths: list[str],
    conn: list[dict[str, Any]],
    inside_list: list[bool],
    stalled_set: set[int],
    idents: list[str],
    timings: list[tuple[float, float]],
) -> TargetFigures:
    import json

    reports = [json.loads(Path(p).read_text(encoding="utf-8")) for p in paths]
    welcomed = np.array([v for r in reports for v in r["welcomed"]], dtype=bool)
    closed = np.array([v for r in reports for v in r["closed"]], dtype=bool)
    inside = np.array(inside_list, dtype=bool)
    stalled = np.zeros(len(inside), dtype=bool)
    stalled[list(stalled_set)] = True
    alerts: list[AlertFigures] = []
    for k, ident in enumerate(idents):
        times = np.array([t for r in reports for t in r["times"][k]], dtype=np.float64)
        size = max(r["sizes"][k] for r in reports)
        is_sentinel = k >= args.repeat
        area = np.ones(len(inside), dtype=bool) if is_sentinel else inside
        alerts.append(
            alert_figures(ident, *timings[k], times, area, welcomed, closed, stalled, size)
        )
    t_start = min(c["t_start"] for c in conn)
    t_end = max(c["t_end"] for c in conn)
    connected = sum(c["connected"] for c in conn)
    errors: dict[str, int] = {}
    for c in conn:
        for msg, n in c["errors"].items():
            errors[msg] = errors.get(msg, 0) + n
    span = max(1e-9, t_end - t_start)
    return TargetFigures(
        target=name,
        processes=args.processes if name == "amber" else 1,
        clients=len(inside),
        connected=connected,
        failed=sum(c["failed"] for c in conn),
        connect_errors=errors,
        connect_s=round(span, 3),
        connect_rate=round(connected / span, 1),
        rss_kib_per_conn=None,
        rss={},
        alerts=alerts[: args.repeat],
        sentinel=alerts[args.repeat] if len(alerts) > args.repeat else None,
        stalled=int(stalled.sum()),
        stalled_closed=int((stalled & closed).sum()),
    )


async def main(args: argparse.Namespace) -> int:
    """Run every requested target in turn; print, save; 0 if every alert was exact."""
    task = asyncio.current_task()
    assert task is not None
    with contextlib.suppress(NotImplementedError, RuntimeError):
        # SIGTERM cancels like Ctrl-C does, so the cleanup below always runs.
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    if args.api_url and not (args.stream_url and args.agency and args.secret):
        print("loadtest: --api-url needs --stream-url, --agency and --secret", file=sys.stderr)
        return 2
    names = ["raw", "naive", "amber"] if args.target == "all" else args.target.split(",")
    if not names or any(n not in ("raw", "naive", "amber") for n in names):
        print(
            f"loadtest: --target {args.target}: expected amber, raw, naive or all", file=sys.stderr
        )
        return 2
    # Every socket is an open file: a process past its limit fails accepts and connects.
    limit, per_server = files_limit(), math.ceil(args.clients / args.processes)
    if per_server > limit - 64 and not args.api_url:
        print(
            f"loadtest: {per_server:,} clients per broadcaster process; the open-files limit"
            f" is {limit:,}: use --processes {math.ceil(args.clients / (limit - 64))} or more",
            file=sys.stderr,
        )
        return 2
    placement = await asyncio.to_thread(
        place, args.county, args.clients, args.inside_fraction, args.seed
    )
    n_in = sum(placement.inside)
    print(
        f"{args.clients:,} clients around {placement.name} ({placement.county}):"
        f" {n_in:,} inside, {args.clients - n_in:,} outside",
        file=sys.stderr,
    )
    tag = f"{time.strftime('%H%M%S')}-{secrets.token_hex(3)}"
    results: list[TargetFigures] = []
    with tempfile.TemporaryDirectory(prefix="amber-loadtest-") as tmp:
        if args.logs:
            tmp = str(args.logs.resolve())
        for name in names:
            work = Path(tmp) / name
            work.mkdir(parents=True, exist_ok=True)
            results.append(await measure(name, args, placement, work, tag))
    print_table(results)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    record_args = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    record_args = {k: v for k, v in record_args.items() if k not in ("func", "secret")}
    for path in save(results, record_args, args.out, stamp, plot=not args.no_plot):
        print(f"wrote {path}")
    return 0 if all(r.exact for r in results) else 1


def run(args: argparse.Namespace) -> int:
    """Entry point of ``amber-relay loadtest``."""
    try:
        return asyncio.run(main(args))
    except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C, or SIGTERM (cancels main)
        print("loadtest: interrupted; every process it started was stopped", file=sys.stderr)
        return 130
    except (RuntimeError, httpx.HTTPError) as exc:  # a child or the system failed
        print(f"loadtest: {exc}", file=sys.stderr)
        return 1
