"""compose.yaml run as real local processes: Redis primary + replica, three Sentinels, a
worker, two broadcasters and HAProxy in front. Alerts through the load balancer; a
broadcaster killed; the Redis primary SIGKILLed while an agency posts every 100 ms."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
import pytest_asyncio

from tests._compose import LocalCompose, Proc, sentinel_view
from tests.support import Agency, Client, ServerProcess, alert_doc, seconds, signed, square

pytestmark = pytest.mark.asyncio(loop_scope="module")

# One city per test: alerts of one test stay active and must not show up in another's.
SA = (29.42, -98.49)
DAL = (32.78, -96.80)
HOU = (29.76, -95.37)
SENTINELS = ("sentinel-1", "sentinel-2", "sentinel-3")
# Short failure detection so the failover fits in a test (compose: 5 s / 60 s).
DOWN_AFTER_MS = 500
FAILOVER_TIMEOUT_MS = 2000


@dataclass
class Stack:
    compose: LocalCompose
    agency: Agency
    redis: dict[str, Proc]
    sentinels: dict[str, Proc]
    amber: dict[str, ServerProcess]
    lb: Proc
    extra_env: dict[str, str]
    started: list[Proc | ServerProcess] = field(default_factory=list)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.compose.port('lb', 8000)}"

    @property
    def stream(self) -> str:
        return f"ws://127.0.0.1:{self.compose.port('lb', 8001)}/v1/stream"

    async def post(self, http: httpx.AsyncClient, doc: dict[str, object]) -> httpx.Response:
        return await signed(http, "POST", "/v1/alerts", self.agency, doc)


async def wait_sentinels_see_everyone(compose: LocalCompose) -> None:
    """Until every Sentinel knows the replica and the two other Sentinels (bounded)."""
    async with asyncio.timeout(seconds(30)):
        for name in SENTINELS:
            while True:
                view = await sentinel_view(compose.port(name, 26379))
                if view.get("num-slaves") == "1" and view.get("num-other-sentinels") == "2":
                    break
                await asyncio.sleep(0.1)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """Every compose service started in dependency order, each waited for."""
    tmp = tmp_path_factory.mktemp("compose")
    agency = Agency("txdps", secrets.token_hex(16))
    agencies = tmp / "agencies.toml"
    agencies.write_text(
        f'[agencies.txdps]\nsecret = "{agency.secret}"\njurisdiction = ["48"]\n', encoding="utf-8"
    )
    compose = LocalCompose(tmp, agencies)
    started: list[Proc | ServerProcess] = []
    extra_env = {"AMBER_REDIS_WAIT_TIMEOUT_S": str(seconds(1))}
    try:
        primary = compose.redis("redis-primary")
        started.append(primary)
        await primary.line("Ready to accept connections")
        replica = compose.redis("redis-replica")
        started.append(replica)
        await replica.line("MASTER <-> REPLICA sync: Finished with success")
        sentinels = {}
        for name in SENTINELS:
            s = compose.sentinel(
                name, down_after_ms=DOWN_AFTER_MS, failover_timeout_ms=FAILOVER_TIMEOUT_MS
            )
            started.append(s)
            sentinels[name] = s
            await s.line("+monitor master amber")
        await wait_sentinels_see_everyone(compose)
        amber = {
            name: compose.amber(name, extra_env)
            for name in ("worker", "broadcaster-1", "broadcaster-2")
        }
        started.extend(amber.values())
        for name in ("broadcaster-1", "broadcaster-2"):
            await amber[name].wait_ready()
        lb = compose.haproxy("lb")
        started.append(lb)
        await lb.line("Loading success")
        yield Stack(
            compose,
            agency,
            {"redis-primary": primary, "redis-replica": replica},
            sentinels,
            amber,
            lb,
            extra_env,
            started,
        )
    finally:
        for p in reversed(started):
            p.stop()


async def test_client_through_haproxy_gets_an_alert(stack: Stack) -> None:
    """An alert posted to the load balancer reaches a client connected through it."""
    c = await Client.open(stack.stream, lat=SA[0], lon=SA[1])
    async with httpx.AsyncClient(base_url=stack.api, timeout=seconds(10)) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.text
        r = await stack.post(http, alert_doc("TX-LB1", polygon=square(*SA, 0.1)))
    assert r.status_code == 202, r.text
    assert (await c.next_of("interrupt"))["alert"]["id"] == "txdps/TX-LB1"
    await c.close()


@pytest.mark.parametrize(
    "partial",
    [
        b"POST /v1/alerts HTTP/1.1\r\nHost: lb\r\n",  # headers never finished
        b"POST /v1/alerts HTTP/1.1\r\nHost: lb\r\nContent-Length: 100\r\n\r\n{",  # body
    ],
)
async def test_haproxy_cuts_off_a_slow_request(stack: Stack, partial: bytes) -> None:
    """A request whose headers or body do not arrive within the http-request timeout is
    answered 408 by HAProxy and closed, without tying up a broadcaster."""
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.compose.port("lb", 8000))
    try:
        writer.write(partial)
        await writer.drain()
        async with asyncio.timeout(seconds(10)):
            answer = await reader.read()  # until HAProxy closes
        assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    finally:
        writer.close()


async def test_killed_broadcaster_clients_reconnect_through_haproxy(stack: Stack) -> None:
    """Kill -9 one broadcaster: its clients reconnect through HAProxy to the other and get
    what they missed once, and not what they had."""
    clients = [await Client.open(stack.stream, lat=DAL[0], lon=DAL[1] + i * 1e-3) for i in range(6)]
    nodes = {c.frames[0]["node"] for c in clients}
    assert len(nodes) == 2, nodes  # leastconn spread them over both replicas
    async with httpx.AsyncClient(base_url=stack.api, timeout=seconds(10)) as http:
        r = await stack.post(http, alert_doc("TX-LB2", polygon=square(*DAL, 0.1)))
        assert r.status_code == 202, r.text
        for c in clients:
            assert (await c.next_of("interrupt"))["alert"]["id"] == "txdps/TX-LB2"
        victim_node = stack.amber["broadcaster-1"].ready["node"]
        stack.amber["broadcaster-1"].kill()
        orphans = [c for c in clients if c.frames[0]["node"] == victim_node]
        assert orphans
        for c in orphans:
            with pytest.raises(Exception):  # noqa: B017 - any close/reset error will do
                await c.next(timeout_s=10)
        # Posted while they are offline (HAProxy retries a refused connect elsewhere).
        r = await stack.post(http, alert_doc("TX-LB3", polygon=square(*DAL, 0.2)))
        assert r.status_code == 202, r.text
    for _ in orphans:
        again = await Client.open(stack.stream, lat=DAL[0], lon=DAL[1], seen=[("txdps/TX-LB2", 1)])
        assert again.frames[0]["node"] != victim_node
        assert (await again.next_of("interrupt"))["alert"]["id"] == "txdps/TX-LB3"
        await again.close()
    # Back as `restart: unless-stopped` would bring it, for the next test.
    stack.amber["broadcaster-1"] = stack.compose.amber("broadcaster-1", stack.extra_env)
    stack.started.append(stack.amber["broadcaster-1"])
    await stack.amber["broadcaster-1"].wait_ready()
    for c in clients:
        await c.close()


async def test_primary_killed_while_posting_every_100ms_loses_no_accepted_alert(
    stack: Stack,
) -> None:
    """SIGKILL the Redis primary while posting every 100 ms: Sentinel promotes the replica,
    the hook answers 503 (never 202 unreplicated) meanwhile and 202 after, and every 202'd
    alert reaches each client exactly once."""
    compose = stack.compose
    clients = [await Client.open(stack.stream, lat=HOU[0], lon=HOU[1] + i * 1e-3) for i in range(3)]
    statuses: dict[str, int] = {}
    codes: Counter[str] = Counter()
    answered_at: dict[str, float] = {}
    kill_at: float | None = None
    promoted_at: float | None = None
    replica_port = compose.port("redis-replica", 6379)

    async def post_one(http: httpx.AsyncClient, alert_id: str) -> None:
        try:
            r = await stack.post(http, alert_doc(alert_id, polygon=square(*HOU, 0.5)))
            statuses[alert_id] = r.status_code
            if r.status_code != 202:
                is_problem = r.headers.get("content-type") == "application/problem+json"
                codes[r.json()["code"] if is_problem else f"lb {r.status_code}"] += 1
        except httpx.HTTPError:
            statuses[alert_id] = 0  # no answer: not accepted either
        answered_at[alert_id] = time.monotonic()

    def accepted_after_kill() -> int:
        return sum(
            1
            for i, s in statuses.items()
            if s == 202 and kill_at is not None and answered_at[i] > kill_at
        )

    async def watch_promotion() -> None:
        nonlocal promoted_at
        port = compose.port("sentinel-1", 26379)
        while True:
            view = await sentinel_view(port)
            if view.get("port") == str(replica_port) and "s_down" not in view.get("flags", ""):
                promoted_at = time.monotonic()
                return
            await asyncio.sleep(0.05)

    posts: list[asyncio.Task[None]] = []
    restarted_at = 0.0
    async with httpx.AsyncClient(base_url=stack.api, timeout=seconds(15)) as http:
        async with asyncio.timeout(seconds(60)):
            n = 0
            watcher: asyncio.Task[None] | None = None
            restarted = False
            while accepted_after_kill() < 10:
                posts.append(asyncio.create_task(post_one(http, f"TX-FO-{n:04d}")))
                n += 1
                if n == 10:
                    stack.redis["redis-primary"].kill()
                    kill_at = time.monotonic()
                    watcher = asyncio.create_task(watch_promotion())
                if watcher is not None and watcher.done() and not restarted:
                    watcher.result()
                    # `restart: unless-stopped`: the old primary comes back; Sentinel
                    # turns it into a replica of the promoted one.
                    stack.redis["redis-primary"] = compose.redis("redis-primary")
                    stack.started.append(stack.redis["redis-primary"])
                    restarted = True
                    restarted_at = time.monotonic()
                await asyncio.sleep(0.1)
            await asyncio.gather(*posts)
    assert kill_at is not None and promoted_at is not None
    counts = Counter(statuses.values())
    accepted = sorted(i for i, s in statuses.items() if s == 202)
    first_202_after = min(answered_at[i] for i in accepted if answered_at[i] > kill_at)
    print(
        f"\nfailover: Sentinel promoted the replica {promoted_at - kill_at:.2f} s after the"
        f" SIGKILL; old primary restarted at {restarted_at - kill_at:.2f} s; first 202 (a"
        f" replica acknowledging again) at {first_202_after - kill_at:.2f} s; answers"
        f" {dict(counts)} over {len(statuses)} posts; non-202 by code {dict(codes)}"
    )
    assert set(counts) <= {202, 503}, counts
    assert counts[503] >= 1
    # Every refusal is problem+json with a code: the API's own, or HAProxy's when no
    # replica was ready.
    assert set(codes) <= {"store_unavailable", "store_not_replicated", "no_ready_replica"}
    # Every accepted alert, and nothing twice: wait for all of them on every client.
    for c in clients:
        shown: Counter[str] = Counter()
        async with asyncio.timeout(seconds(30)):
            while not set(accepted) <= set(shown):
                frame = await c.next(timeout_s=30)
                if frame["type"] == "interrupt":
                    # Ids are "<agency>/<identifier>"; statuses are keyed by identifier.
                    shown[frame["alert"]["id"].partition("/")[2]] += 1
        assert all(k == 1 for k in shown.values()), shown
        await c.close()
