"""Graceful drain on SIGTERM: /readyz 503, sockets closed with 1012 in batches over drain_s."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from amber_relay.redis_server import RedisServer
from tests.support import Client, ServerProcess, seconds

pytestmark = pytest.mark.asyncio

SA = (29.42, -98.49)


async def closed_at(c: Client) -> tuple[float, int | None]:
    """When the server closed this client, and with which code."""
    try:
        async with asyncio.timeout(seconds(30)):
            while True:
                await c.ws.recv()
    except ConnectionClosed as exc:
        return time.monotonic(), exc.rcvd.code if exc.rcvd else None
    raise AssertionError("unreachable")


async def test_sigterm_drains_in_batches_with_1012(
    redis_server: RedisServer, agencies_file: Path
) -> None:
    """SIGTERM: /readyz says draining, 60 sockets get 1012 spread over ~drain_s, exit 0."""
    env = {
        "AMBER_REDIS_URL": redis_server.url,
        "AMBER_REDIS_PREFIX": f"drain-{uuid.uuid4().hex[:10]}:",
        "AMBER_AGENCIES_FILE": str(agencies_file),
        "AMBER_DRAIN_S": "2",
    }
    proc = ServerProcess(["serve", "--port", "0", "--stream-port", "0"], env)
    try:
        ready = await proc.wait_ready()
        clients = [
            await Client.open(ready["stream_url"], lat=SA[0], lon=SA[1] + i * 1e-3)
            for i in range(60)
        ]
        watchers = [asyncio.create_task(closed_at(c)) for c in clients]
        async with httpx.AsyncClient(base_url=ready["api_url"], timeout=seconds(10)) as http:
            assert (await http.get("/readyz")).status_code == 200
            proc.proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            async with asyncio.timeout(seconds(10)):
                while True:
                    r = await http.get("/readyz")
                    if r.status_code == 503:
                        break
                    await asyncio.sleep(0.02)
            assert r.json()["detail"] == "draining"
        results = await asyncio.gather(*watchers)
        assert {code for _, code in results} == {1012}
        times = sorted(t for t, _ in results)
        spread = times[-1] - times[0]
        # 60 sockets over 2 s in 0.1 s ticks: 3 per tick, the last ~1.9 s after the
        # first (a lower bound the drain guarantees, however slow the machine).
        assert spread >= 1.5, spread
        print(
            f"\n[measure] drain of 60 sockets: first close {times[0] - signalled:.2f} s "
            f"after SIGTERM, spread {spread:.2f} s"
        )
        assert await asyncio.to_thread(proc.proc.wait, seconds(30)) == 0
    finally:
        proc.stop()
