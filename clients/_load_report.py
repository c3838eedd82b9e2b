"""Figures of a load test: per-alert latency and exactness, the table, the JSON record, the CDF."""

from __future__ import annotations

import json
import os
import platform
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "AlertFigures",
    "TargetFigures",
    "alert_figures",
    "print_table",
    "rss_table",
    "save",
]


@dataclass
class AlertFigures:
    """One alert's delivery: counts over all clients, latency from the hook in ms."""

    ident: str
    expected: int
    """Connected clients inside the area (stalled ones excluded)."""
    delivered: int
    false_positives: int
    """Clients outside the area that got the alert (must be 0)."""
    false_negatives: int
    """Expected clients that did not get it (must be 0)."""
    closed: int
    """Expected clients whose socket closed before the alert reached them."""
    accept_ms: float
    """Hook sent -> accepted (202 read by the load test)."""
    first_ms: float
    p50_ms: float
    p99_ms: float
    last_ms: float
    frame_bytes: int
    latencies_ms: list[float] = field(repr=False)


@dataclass
class TargetFigures:
    """Everything measured for one system under test."""

    target: str
    processes: int
    clients: int
    connected: int
    failed: int
    connect_errors: dict[str, int]
    connect_s: float
    connect_rate: float
    """Handshake + hello + welcome per second, all processes together."""
    rss_kib_per_conn: float | None
    rss: dict[str, dict[str, float]]
    """Per server pid: KiB before and after connecting, connections held."""
    alerts: list[AlertFigures]
    sentinel: AlertFigures | None = None
    stalled: int = 0
    stalled_closed: int = 0

    @property
    def median_last_ms(self) -> float:
        return statistics.median(a.last_ms for a in self.alerts) if self.alerts else float("nan")

    @property
    def median_p50_ms(self) -> float:
        return statistics.median(a.p50_ms for a in self.alerts) if self.alerts else float("nan")

    @property
    def exact(self) -> bool:
        return all(
            a.false_positives == 0 and a.false_negatives == 0 and a.delivered == a.expected
            for a in self.alerts
        )


def alert_figures(
    ident: str,
    t0: float,
    t_accept: float,
    times: np.ndarray[Any, np.dtype[np.float64]],
    inside: np.ndarray[Any, np.dtype[np.bool_]],
    welcomed: np.ndarray[Any, np.dtype[np.bool_]],
    closed: np.ndarray[Any, np.dtype[np.bool_]],
    stalled: np.ndarray[Any, np.dtype[np.bool_]],
    frame_bytes: int,
) -> AlertFigures:
    """Figures of one alert from per-client receive times (0.0 = not received)."""
    got = times > 0.0
    expected = inside & welcomed & ~stalled
    delivered = expected & got
    lat = np.sort((times[delivered] - t0) * 1000.0)

    def pct(q: float) -> float:
        return round(float(np.percentile(lat, q)), 2) if lat.size else float("nan")

    return AlertFigures(
        ident=ident,
        expected=int(expected.sum()),
        delivered=int(delivered.sum()),
        false_positives=int((~inside & welcomed & got).sum()),
        false_negatives=int((expected & ~got).sum()),
        closed=int((expected & ~got & closed).sum()),
        accept_ms=round((t_accept - t0) * 1000.0, 2),
        first_ms=round(float(lat[0]), 2) if lat.size else float("nan"),
        p50_ms=pct(50),
        p99_ms=pct(99),
        last_ms=round(float(lat[-1]), 2) if lat.size else float("nan"),
        frame_bytes=frame_bytes,
        latencies_ms=lat.tolist(),
    )


def ratios(results: list[TargetFigures]) -> dict[str, float]:
    """amber / raw and amber / naive of the median hook -> last frame (and p50)."""
    by = {r.target: r for r in results}
    out: dict[str, float] = {}
    amber = by.get("amber")
    if amber is None:
        return out
    for base in ("raw", "naive"):
        b = by.get(base)
        if b is not None and b.median_last_ms > 0:
            out[f"amber/{base} last"] = round(amber.median_last_ms / b.median_last_ms, 3)
            out[f"amber/{base} p50"] = round(amber.median_p50_ms / b.median_p50_ms, 3)
        if b is not None and amber.rss_kib_per_conn and b.rss_kib_per_conn:
            out[f"amber/{base} memory"] = round(amber.rss_kib_per_conn / b.rss_kib_per_conn, 3)
        if b is not None and b.connect_rate:
            out[f"amber/{base} connect rate"] = round(amber.connect_rate / b.connect_rate, 3)
    return out


def print_table(results: list[TargetFigures]) -> None:
    """The human-readable summary: one line per alert, then the ratios."""
    head = (
        f"{'target':<7}{'procs':>6}{'conn/s':>9}{'KiB/conn':>9}  {'alert':<6}{'expected':>9}"
        f"{'delivered':>10}{'FP':>4}{'FN':>4}{'accept':>8}{'first':>8}{'p50':>8}{'p99':>8}"
        f"{'last':>8}{'frame B':>8}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        mem = f"{r.rss_kib_per_conn:.2f}" if r.rss_kib_per_conn is not None else "-"
        rows = [(str(i + 1), a) for i, a in enumerate(r.alerts)]
        if r.sentinel is not None:
            rows.append(("all", r.sentinel))
        for label, a in rows:
            print(
                f"{r.target:<7}{r.processes:>6}{r.connect_rate:>9,.0f}{mem:>9}  {label:<6}"
                f"{a.expected:>9,}{a.delivered:>10,}{a.false_positives:>4}{a.false_negatives:>4}"
                f"{a.accept_ms:>8.1f}{a.first_ms:>8.1f}{a.p50_ms:>8.1f}{a.p99_ms:>8.1f}"
                f"{a.last_ms:>8.1f}{a.frame_bytes:>8}"
            )
        if r.failed:
            print(f"        {r.failed} clients failed to connect: {r.connect_errors}")
        if r.stalled:
            print(f"        stalled clients closed by the server: {r.stalled_closed}/{r.stalled}")
    print("(ms from the hook being sent; 'all' = the sentinel alert covering every client)")
    for r in results:
        print(
            f"{r.target}: median of {len(r.alerts)} alert(s): last {r.median_last_ms:.1f} ms,"
            f" p50 {r.median_p50_ms:.1f} ms; {r.connected:,} connected in {r.connect_s:.1f} s"
        )
    for k, v in ratios(results).items():
        print(f"ratio {k}: {v:.3f}")


def _machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "node": platform.node(),
    }


def save(
    results: list[TargetFigures], args: dict[str, Any], out_dir: Path, stamp: str, plot: bool
) -> list[Path]:
    """Write the JSON record (and the PNG CDF); returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"args": args, "machine": _machine(), "ratios": ratios(results)}
    record["targets"] = []
    for r in results:
        d = asdict(r)
        for a in [*d["alerts"], *([d["sentinel"]] if d["sentinel"] else [])]:
            lat = a.pop("latencies_ms")
            # 101 quantiles are enough to redraw the CDF without 20k numbers per alert.
            a["cdf_ms"] = np.percentile(lat, np.arange(0, 101)).round(2).tolist() if lat else []
        d["median_last_ms"], d["median_p50_ms"], d["exact"] = (
            r.median_last_ms,
            r.median_p50_ms,
            r.exact,
        )
        record["targets"].append(d)
    path = out_dir / f"loadtest-{stamp}.json"
    path.write_text(json.dumps(record, indent=1), encoding="utf-8")
    written = [path]
    if plot:
        written.append(_plot(results, out_dir / f"loadtest-{stamp}.png"))
    return written


def _plot(results: list[TargetFigures], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    colors = {"raw": "tab:blue", "naive": "tab:gray", "amber": "tab:orange"}
    styles = ["-", "--", ":", "-."]
    for r in results:
        for i, a in enumerate(r.alerts):
            if not a.latencies_ms:
                continue
            y = np.arange(1, len(a.latencies_ms) + 1) / len(a.latencies_ms)
            ax.plot(
                a.latencies_ms,
                y,
                color=colors.get(r.target),
                linestyle=styles[i % len(styles)],
                label=f"{r.target} #{i + 1} (n={a.delivered:,})",
            )
    ax.set_xlabel("hook -> frame received (ms)")
    ax.set_ylabel("fraction of matching clients")
    ax.set_title("Fan-out latency CDF")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def rss_table(
    pids: list[int],
    before: dict[int, int | None],
    after: dict[int, int | None],
    conn: list[dict[str, Any]],
) -> dict[str, dict[str, float]]:
    """Per server pid: VmRSS before/after connecting (KiB) and the connections it holds."""
    held: dict[int, int] = {}
    for c in conn:
        for node, n in c["nodes"].items():
            tail = str(node).rpartition(":")[2]
            if tail.isdigit():
                held[int(tail)] = held.get(int(tail), 0) + n
    out: dict[str, dict[str, float]] = {}
    for pid in pids:
        b, a = before.get(pid), after.get(pid)
        if b is not None and a is not None and held.get(pid):
            out[str(pid)] = {"before_kib": b, "after_kib": a, "conns": held[pid]}
    return out
