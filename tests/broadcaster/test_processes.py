"""Real processes: two broadcasters and a worker on one Redis; a broadcaster killed and back."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from amber_relay.redis_server import RedisServer, free_port
from tests.support import Agency, Client, ServerProcess, alert_doc, seconds, signed, square

pytestmark = pytest.mark.asyncio

SA = (29.42, -98.49)


@dataclass
class Cluster:
    env: dict[str, str]
    worker: ServerProcess
    serves: list[ServerProcess]
    ready: list[dict[str, str]]


@pytest_asyncio.fixture
async def cluster(redis_server: RedisServer, agencies_file: Path) -> AsyncIterator[Cluster]:
    """An ``amber-relay worker`` and two ``amber-relay serve`` processes on the private Redis."""
    env = {
        "AMBER_REDIS_URL": redis_server.url,
        "AMBER_REDIS_PREFIX": f"proc-{uuid.uuid4().hex[:10]}:",
        "AMBER_AGENCIES_FILE": str(agencies_file),
    }
    worker = ServerProcess(["worker"], env)
    serves = [ServerProcess(["serve", "--port", "0", "--stream-port", "0"], env) for _ in range(2)]
    try:
        ready = [await s.wait_ready() for s in serves]
        yield Cluster(env, worker, serves, ready)
    finally:
        for p in [worker, *serves]:
            p.stop()


async def post(api_url: str, agency: Agency, doc: dict[str, object]) -> None:
    async with httpx.AsyncClient(base_url=api_url, timeout=seconds(10)) as http:
        r = await signed(http, "POST", "/v1/alerts", agency, doc)
    assert r.status_code == 202, r.text


async def test_two_broadcasters_each_deliver_to_their_clients(
    cluster: Cluster, agency: Agency
) -> None:
    """An alert posted to one broadcaster reaches the clients of both (stream fan-in)."""
    a, b = cluster.ready
    on_a = await Client.open(a["stream_url"], lat=SA[0], lon=SA[1])
    on_b = await Client.open(b["stream_url"], lat=SA[0] + 0.01, lon=SA[1])
    assert on_a.frames[0]["node"] != on_b.frames[0]["node"]
    await post(a["api_url"], agency, alert_doc("TX-PROC", polygon=square(*SA, 0.1)))
    for c in (on_a, on_b):
        frame = await c.next_of("interrupt")
        assert frame["alert"]["id"] == "txdps/TX-PROC"


async def test_killed_broadcaster_clients_resync_without_loss_or_duplicates(
    cluster: Cluster, agency: Agency
) -> None:
    """Kill -9 a broadcaster: its clients reconnect to a new one, get what they missed once."""
    a = cluster.ready[0]
    victim = cluster.serves[0]
    clients = [
        await Client.open(a["stream_url"], lat=SA[0], lon=SA[1] + i * 0.001) for i in range(5)
    ]
    await post(a["api_url"], agency, alert_doc("TX-K1", polygon=square(*SA, 0.1)))
    for c in clients:
        assert (await c.next_of("interrupt"))["alert"]["id"] == "txdps/TX-K1"
    victim.kill()
    for c in clients:  # every socket of the dead process is closed under its client
        # nothing more was sent before the kill, so the next event is the close
        with pytest.raises(Exception):  # noqa: B017 - any close/reset error will do
            await c.next(timeout_s=10)
    survivor = cluster.ready[1]
    # published while those clients are offline
    await post(survivor["api_url"], agency, alert_doc("TX-K2", polygon=square(*SA, 0.2)))
    restarted = ServerProcess(["serve", "--port", "0", "--stream-port", "0"], cluster.env)
    try:
        fresh = await restarted.wait_ready()
        for _ in clients:
            again = await Client.open(
                fresh["stream_url"], lat=SA[0], lon=SA[1], seen=[("txdps/TX-K1", 1)]
            )
            assert again.frames[0]["active"] == 1
            frame = await again.next_of("interrupt")
            assert frame["alert"]["id"] == "txdps/TX-K2"
            await again.close()
    finally:
        restarted.stop()


async def test_serve_without_redis_url_says_how(tmp_path: Path) -> None:
    """``amber-relay serve`` without AMBER_REDIS_URL exits 2 with a how-to, not a traceback."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "amber_relay.cli",
        "serve",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
    )
    async with asyncio.timeout(seconds(30)):
        out, err = await proc.communicate()
    assert proc.returncode == 2
    assert b"AMBER_REDIS_URL" in err
    assert b"Traceback" not in err


async def test_run_starts_a_private_redis_and_serves(tmp_path: Path) -> None:
    """``amber-relay run`` with no Redis configured starts its own and prints credentials."""
    env = {"AMBER_PORT": str(free_port()), "AMBER_STREAM_PORT": str(free_port())}
    proc = ServerProcess(["run", "--data-dir", str(tmp_path / "data")], env)
    try:
        ready = await proc.wait_ready()
        assert any("demo agency: id=demo secret=" in line for line in proc.lines)
        async with httpx.AsyncClient(base_url=ready["api_url"], timeout=seconds(10)) as http:
            health = await http.get("/healthz")
        assert health.json()["ok"] is True
        assert (tmp_path / "data" / "redis").is_dir()
    finally:
        proc.stop()
