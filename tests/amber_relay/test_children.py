"""``serve --processes N`` on real processes: signals reach every child, no orphan survives."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from amber_relay.redis_server import RedisServer
from tests.support import ServerProcess, seconds

pytestmark = pytest.mark.asyncio


def env_for(redis_server: RedisServer, agencies_file: Path | str) -> dict[str, str]:
    return {
        "AMBER_REDIS_URL": redis_server.url,
        "AMBER_REDIS_PREFIX": f"kids-{uuid.uuid4().hex[:10]}:",
        "AMBER_AGENCIES_FILE": str(agencies_file),
        "AMBER_DRAIN_S": "1",
    }


async def child_pids(proc: ServerProcess, n: int) -> list[int]:
    """Pids of the first ``n`` children, read from their ready lines (node = host:pid)."""
    async with asyncio.timeout(seconds(60)):
        while True:
            ready = [json.loads(x) for x in list(proc.lines) if x.startswith('{"event": "ready"')]
            if len(ready) >= n:
                return [int(r["node"].rsplit(":", 1)[1]) for r in ready[:n]]
            if proc.proc.poll() is not None:
                raise AssertionError("\n".join(proc.lines[-30:]))
            await asyncio.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead, only not reaped yet.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def gone(pids: list[int], timeout_s: float = 30) -> float:
    """Wait until no pid is alive; returns how long it took."""
    started = time.monotonic()
    async with asyncio.timeout(seconds(timeout_s)):
        while True:  # no event exists for another process's death: poll /proc
            if not any(alive(p) for p in pids):
                break
            await asyncio.sleep(0.05)
    return time.monotonic() - started


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_signal_reaches_every_child_and_parent_exits_after_them(
    redis_server: RedisServer, agencies_file: Path, signum: signal.Signals
) -> None:
    """SIGTERM/SIGINT to the parent stops every child; the parent exits 0 after them."""
    proc = ServerProcess(
        ["serve", "--processes", "2", "--port", "0", "--stream-port", "0"],
        env_for(redis_server, agencies_file),
    )
    try:
        pids = await child_pids(proc, 2)
        proc.proc.send_signal(signum)
        code = await asyncio.to_thread(proc.proc.wait, seconds(30))
        assert code == 0, "\n".join(proc.lines[-30:])
        assert not any(alive(p) for p in pids), "a child outlived its parent"
    finally:
        proc.stop()


async def test_sigkilled_parent_leaves_no_orphan(
    redis_server: RedisServer, agencies_file: Path
) -> None:
    """SIGKILL the parent: the kernel signals the children (PDEATHSIG); none survives."""
    proc = ServerProcess(
        ["serve", "--processes", "2", "--port", "0", "--stream-port", "0"],
        env_for(redis_server, agencies_file),
    )
    try:
        pids = await child_pids(proc, 2)
        proc.kill()
        took = await gone(pids)
        print(f"\n[measure] parent SIGKILLed -> both children gone in {took:.2f} s")
    finally:
        proc.stop()
        for p in pids:
            if alive(p):
                os.kill(p, signal.SIGKILL)


async def test_child_crashing_at_start_backs_off_then_gives_up(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """Children that cannot start are retried with doubling delays; then the parent exits 1."""
    env = env_for(redis_server, tmp_path / "missing-agencies.toml")
    env["AMBER_RESTART_GIVE_UP"] = "4"
    proc = ServerProcess(["serve", "--processes", "2", "--port", "0", "--stream-port", "0"], env)
    try:
        code = await asyncio.to_thread(proc.proc.wait, seconds(60))
        out = "\n".join(proc.lines)
        assert code == 1, out
        assert "exited 4 times in a row" in out and "giving up" in out, out
        delays = [
            float(line.rsplit("restarting in ", 1)[1].split()[0])
            for line in proc.lines
            if "restarting in" in line
        ]
        assert delays == [0.5, 1.0, 2.0], out
        assert "agencies file" in out  # the child's own reason is in the log too
    finally:
        proc.stop()
