"""A rolling restart of two replicas under 2,000 library clients: every alert shown once."""

from __future__ import annotations

import asyncio
import collections
import json
import random
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest

from amber_relay import frames
from amber_relay.redis_server import RedisServer, free_port
from clients.client import AlertClient, ConnectionState
from tests.support import Agency, ServerProcess, alert_doc, seconds, signed, square

pytestmark = pytest.mark.asyncio

SA = (29.42, -98.49)
CLIENTS = 2000
DRAIN_S = 3.0


class Device:
    """One app: an AlertClient, what it showed, when it (re)connected."""

    def __init__(self, stream_url: str, i: int, rng: random.Random) -> None:
        self.shown: list[str] = []
        self.connects: list[float] = []
        self.offline_since: float | None = None
        self.gaps: list[float] = []
        self.why: list[str] = []
        self.client = AlertClient(
            stream_url,
            lat=SA[0] + rng.uniform(-0.2, 0.2),
            lon=SA[1] + rng.uniform(-0.2, 0.2),
            on_state=self.on_state,
            rng=random.Random(i),
        )
        self.task: asyncio.Task[None] | None = None

    def on_state(self, change: ConnectionState) -> None:
        now = time.monotonic()
        if change.state == "connected":
            self.connects.append(now)
            if self.offline_since is not None:
                self.gaps.append(now - self.offline_since)
                self.offline_since = None
        elif change.state == "disconnected":
            self.why.append(change.detail)
            if self.offline_since is None:
                self.offline_since = now

    async def run(self) -> None:
        async with self.client as client:
            async for event in client:
                if isinstance(event, frames.Interrupt):
                    self.shown.append(event.alert.id)


def replica(ports: tuple[int, int], env: dict[str, str]) -> ServerProcess:
    api, stream = ports
    return ServerProcess(["serve", "--port", str(api), "--stream-port", str(stream)], env)


async def restart(
    proc: ServerProcess, ports: tuple[int, int], env: dict[str, str]
) -> ServerProcess:
    """SIGTERM (drain), wait for the exit, start a new one on the same ports."""
    proc.proc.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(proc.proc.wait, seconds(DRAIN_S + 30))
    assert code == 0, "\n".join(proc.lines[-20:])
    fresh = replica(ports, env)
    await fresh.wait_ready()
    return fresh


async def test_rolling_restart_every_client_shows_every_alert_once(
    redis_server: RedisServer, agencies_file: Path, agency: Agency
) -> None:
    """Two replicas on shared ports (SO_REUSEPORT), restarted in turn while an alert is
    posted every second: each of 2,000 clients shows each alert exactly once."""
    env = {
        "AMBER_REDIS_URL": redis_server.url,
        "AMBER_REDIS_PREFIX": f"roll-{uuid.uuid4().hex[:10]}:",
        "AMBER_AGENCIES_FILE": str(agencies_file),
        "AMBER_DRAIN_S": str(DRAIN_S),
        # 2,000 devices on one address (as behind a NAT or a balancer): no per-address cap.
        "AMBER_STREAM_MAX_CONNECTIONS_PER_ADDRESS": "0",
    }
    ports = (free_port(), free_port())
    worker = ServerProcess(["worker"], env)
    replicas = [replica(ports, env), replica(ports, env)]
    devices: list[Device] = []
    try:
        for r in replicas:
            await r.wait_ready()
        stream_url = f"ws://127.0.0.1:{ports[1]}/v1/stream"
        rng = random.Random(7)
        devices = [Device(stream_url, i, rng) for i in range(CLIENTS)]
        for d in devices:
            d.task = asyncio.create_task(d.run())
        async with asyncio.timeout(seconds(60)):
            while True:  # every device welcomed once
                if all(d.connects for d in devices):
                    break
                await asyncio.sleep(0.1)
        t0 = time.monotonic()
        posted: list[str] = []
        stop_posting = asyncio.Event()

        async def poster() -> None:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{ports[0]}", timeout=seconds(10)
            ) as http:
                n = 0
                while not stop_posting.is_set():
                    name = f"ROLL-{n}"
                    doc = alert_doc(name, polygon=square(*SA, 0.5))
                    body = json.dumps(doc).encode()
                    for _ in range(100):  # a replica stopping may reset the request
                        try:
                            r = await signed(
                                http,
                                "POST",
                                "/v1/alerts",
                                agency,
                                body,
                                content_type="application/json",
                            )
                        except httpx.TransportError:
                            await asyncio.sleep(0.1)
                            continue
                        if r.status_code == 202:
                            break
                        assert r.status_code == 503, r.text
                        await asyncio.sleep(0.1)
                    else:
                        raise AssertionError(f"{name} never accepted")
                    posted.append(f"txdps/{name}")  # the public id
                    n += 1
                    await asyncio.sleep(1.0)

        posting = asyncio.create_task(poster())
        for i in range(2):
            replicas[i] = await restart(replicas[i], ports, env)
        await asyncio.sleep(2)  # two more alerts after the last restart
        stop_posting.set()
        await posting
        want = collections.Counter(posted)
        async with asyncio.timeout(seconds(60)):
            while True:
                if all(len(d.shown) >= len(posted) for d in devices):
                    break
                await asyncio.sleep(0.2)
        bad = [d.shown for d in devices if collections.Counter(d.shown) != want]
        assert not bad, f"{len(bad)} devices differ, e.g. {bad[0]} vs {posted}"
        # Every device was moved at least once (the second replica held them all), and
        # by a drain's "service restart" close, not by a reset or a shutdown stampede.
        firsts = collections.Counter(d.why[0] if d.why else "never" for d in devices)
        assert set(firsts) == {"closed by the server (1012 server restarting: reconnect)"}, firsts

        per_second = collections.Counter(
            int(t - t0) for d in devices for t in d.connects if t >= t0
        )
        gaps = sorted(g for d in devices for g in d.gaps)
        print(
            f"\n[measure] rolling restart: {len(posted)} alerts x {CLIENTS} clients, all shown "
            f"exactly once; {sum(per_second.values())} reconnects"
        )
        print("[measure] reconnects per second since the first restart (s: count):")
        for s in range(max(per_second) + 1 if per_second else 0):
            print(f"  {s:3d}: {per_second.get(s, 0):5d} {'#' * (per_second.get(s, 0) // 20)}")
        reasons = collections.Counter(w.split(" (")[0] for d in devices for w in d.why)
        print(f"[measure] disconnect reasons: {dict(reasons.most_common(5))}")
        if gaps:
            print(
                f"[measure] offline per reconnect: p50 {gaps[len(gaps) // 2]:.2f} s, "
                f"p99 {gaps[int(len(gaps) * 0.99)]:.2f} s, max {gaps[-1]:.2f} s"
            )
    finally:
        for d in devices:
            if d.task is not None:
                d.task.cancel()
        await asyncio.gather(*(d.task for d in devices if d.task), return_exceptions=True)
        for p in [worker, *replicas]:
            p.stop()


async def test_killed_replica_clients_move_and_miss_nothing(
    redis_server: RedisServer, agencies_file: Path, agency: Agency
) -> None:
    """SIGKILL one of two replicas under 500 library clients: its clients reconnect to
    the other one and every client shows the alert posted right after, once."""
    env = {
        "AMBER_REDIS_URL": redis_server.url,
        "AMBER_REDIS_PREFIX": f"kill-{uuid.uuid4().hex[:10]}:",
        "AMBER_AGENCIES_FILE": str(agencies_file),
        "AMBER_DRAIN_S": "1",
    }
    ports = (free_port(), free_port())
    replicas = [replica(ports, env), replica(ports, env)]
    devices: list[Device] = []
    try:
        for p in replicas:
            await p.wait_ready()
        rng = random.Random(11)
        devices = [Device(f"ws://127.0.0.1:{ports[1]}/v1/stream", i, rng) for i in range(500)]
        for d in devices:
            d.task = asyncio.create_task(d.run())
        async with asyncio.timeout(seconds(60)):
            while True:
                if all(d.connects for d in devices):
                    break
                await asyncio.sleep(0.1)
        replicas[0].kill()
        killed = time.monotonic()
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{ports[0]}", timeout=seconds(10)
        ) as http:
            r = await signed(
                http, "POST", "/v1/alerts", agency, alert_doc("KILL-1", polygon=square(*SA, 0.5))
            )
            assert r.status_code == 202, r.text
        async with asyncio.timeout(seconds(60)):
            while True:
                if all(d.shown for d in devices):
                    break
                await asyncio.sleep(0.05)
        everyone = time.monotonic() - killed
        assert all(d.shown == ["txdps/KILL-1"] for d in devices)
        moved = [d for d in devices if len(d.connects) > 1]
        assert moved  # SO_REUSEPORT gave the killed replica some of them
        gaps = sorted(g for d in moved for g in d.gaps)
        print(
            f"\n[measure] replica SIGKILLed: {len(moved)}/500 clients reconnected "
            f"(offline p50 {gaps[len(gaps) // 2]:.2f} s, max {gaps[-1]:.2f} s); the alert "
            f"posted after the kill was shown by all 500 within {everyone:.2f} s"
        )
    finally:
        for d in devices:
            if d.task is not None:
                d.task.cancel()
        await asyncio.gather(*(d.task for d in devices if d.task), return_exceptions=True)
        for p in replicas:
            p.stop()
