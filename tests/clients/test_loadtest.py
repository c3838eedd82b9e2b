"""``amber-relay loadtest`` at small N: its own code path, end to end, on real processes.

Each test runs the command as a user would (private Redis, worker, serve, load
processes), then reads the JSON record it writes. Latency figures are not asserted
(they are benchmarks); exactness and slow-client handling are.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support import ROOT, seconds


def loadtest(out: Path, *flags: str, timeout_s: float = 90) -> dict[str, Any]:
    """Run ``amber-relay loadtest`` and return its JSON record (the one file in ``out``)."""
    cmd = [sys.executable, "-m", "amber_relay.cli", "loadtest", "--no-plot", "--out", str(out)]
    proc = subprocess.run(
        [*cmd, *flags],
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=seconds(timeout_s),
        stdin=subprocess.DEVNULL,
    )
    records = list(out.glob("loadtest-*.json"))
    assert len(records) == 1, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    record: dict[str, Any] = json.loads(records[0].read_text(encoding="utf-8"))
    record["exit"] = proc.returncode
    record["output"] = proc.stdout + proc.stderr
    return record


def test_small_run_is_exact(tmp_path: Path) -> None:
    """200 clients, 190 inside Harris: every inside client gets the alert, no outside one.

    The sentinel alert covers all 200: it proves the outside clients were connected and
    reading when the alert went out, so "did not get it" means "was not sent it".
    """
    record = loadtest(
        tmp_path, "--clients", "200", "--load-processes", "1", "--repeat", "1",
        "--settle-s", "0",
    )  # fmt: skip
    assert record["exit"] == 0, record["output"]
    (amber,) = record["targets"]
    assert amber["target"] == "amber"
    assert amber["connected"] == 200 and amber["failed"] == 0, amber["connect_errors"]
    (alert,) = amber["alerts"]
    assert alert["expected"] == 190
    assert alert["delivered"] == 190
    assert alert["false_positives"] == 0
    assert alert["false_negatives"] == 0
    sentinel = amber["sentinel"]
    assert sentinel["expected"] == sentinel["delivered"] == 200
    assert alert["frame_bytes"] > 900  # the interrupt is padded to ~1 KB
    assert amber["rss_kib_per_conn"] is not None


def _kernel_absorbs_bytes() -> int:
    # What a socket to a client that never reads can hold in the kernel before the
    # server's own write buffer starts to grow: the sender's buffer at its autotuned
    # maximum (tcp_wmem) plus the receiver's small buffer.
    try:
        wmem_max = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, ValueError, IndexError):
        wmem_max = 4 * 1024 * 1024
    return wmem_max + 64 * 1024


def test_clients_that_never_read_are_closed_and_others_served(tmp_path: Path) -> None:
    """3 of 30 clients stop reading: once the server's buffer for them passes the cap
    (AMBER_WRITE_LIMIT_BYTES, 1 MiB here) they are closed; the others get every alert."""
    frame, cap = 256 * 1024, 1024 * 1024
    # Enough alerts to fill the kernel's buffers, then the cap, for a stalled client.
    repeat = math.ceil((_kernel_absorbs_bytes() + cap) / frame) + 2
    record = loadtest(
        tmp_path, "--clients", "30", "--inside-fraction", "1", "--stalled", "3",
        "--write-limit-bytes", str(cap), "--frame-bytes", str(frame),
        "--repeat", str(repeat), "--settle-s", "0", "--load-processes", "1",
        timeout_s=100,
    )  # fmt: skip
    (amber,) = record["targets"]
    assert amber["stalled"] == 3
    assert amber["stalled_closed"] == 3, record["output"]
    for alert in amber["alerts"]:
        assert alert["expected"] == 27
        assert alert["delivered"] == 27, alert
        assert alert["false_positives"] == alert["false_negatives"] == 0
    assert record["exit"] == 0, record["output"]
