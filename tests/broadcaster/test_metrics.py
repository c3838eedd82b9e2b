"""GET /metrics: Prometheus text for one process, and summed over ``serve --processes N``."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from amber_relay.redis_server import RedisServer, free_port
from tests.conftest import System
from tests.support import Agency, Client, ServerProcess, alert_doc, seconds, square

pytestmark = pytest.mark.asyncio

SA = (29.42, -98.49)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape by (name, sorted labels without pid)."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = tuple(sorted((k, v) for k, v in s.labels.items() if k != "pid"))
            out[(s.name, labels)] = out.get((s.name, labels), 0.0) + s.value
    return out


async def scrape(http: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = await http.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return samples(r.text)


async def test_metrics_count_sockets_frames_hook_answers_and_fanout(
    system: System, agency: Agency
) -> None:
    """Two clients and one alert move every counter by the expected amount."""
    before = await scrape(system.http)
    clients = [await Client.open(system.stream_url, lat=SA[0], lon=SA[1]) for _ in range(2)]
    await system.post(agency, alert_doc("TX-M1", polygon=square(*SA, 0.1)))
    for c in clients:
        await c.next_of("interrupt")
    bad = await system.http.post("/v1/alerts", json={}, headers={})
    assert bad.status_code == 401
    after = await scrape(system.http)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert after[("amber_connections_open", ())] == 2
    assert after[("amber_active_alerts", ())] == 1
    assert delta("amber_hellos_total") == 2
    assert delta("amber_frames_sent_total", type="welcome") == 2
    assert delta("amber_frames_sent_total", type="interrupt") == 2
    assert delta("amber_hook_answers_total", status="202", code="accepted") == 1
    assert delta("amber_hook_answers_total", status="401", code="missing_agency") == 1
    assert delta("amber_fanout_seconds_count") == 1
    assert delta("amber_job_latency_seconds_count", runner="server") == 1
    assert ("amber_public_states", (("states", "all"),)) in after
    assert ("amber_event_stream_lag_seconds", ()) in after
    for c in clients:
        await c.close()


async def test_metrics_are_summed_over_serve_processes(
    redis_server: RedisServer, agencies_file: Path, tmp_path: Path
) -> None:
    """With ``serve --processes 2`` every scrape, whichever process answers, counts the
    sockets of both (prometheus-client multiprocess mode on a per-run directory)."""
    env = {
        "AMBER_REDIS_URL": redis_server.url,
        "AMBER_REDIS_PREFIX": f"metrics-{uuid.uuid4().hex[:10]}:",
        "AMBER_AGENCIES_FILE": str(agencies_file),
    }
    port, stream_port = free_port(), free_port()
    args = ["serve", "--processes", "2", "--port", str(port), "--stream-port", str(stream_port)]
    proc = ServerProcess(args, env)
    try:
        ready = await proc.wait_ready()
        async with asyncio.timeout(seconds(60)):  # the second child's ready line
            while sum(line.startswith('{"event": "ready"') for line in proc.lines) < 2:  # noqa: ASYNC110 - a line on a pipe, no event to wait on
                await asyncio.sleep(0.05)
        clients = [await Client.open(ready["stream_url"], lat=SA[0], lon=SA[1]) for _ in range(12)]
        assert len({c.frames[0]["node"] for c in clients}) == 2  # both children hold some

        async def fresh_scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
            # A new connection each time: the kernel hands it to either child.
            async with httpx.AsyncClient(base_url=ready["api_url"], timeout=seconds(10)) as h:
                return await scrape(h)

        # Each child writes its figures about once a second: wait for one round.
        for _ in range(100):  # bounded: 20 s
            if (await fresh_scrape()).get(("amber_connections_open", ())) == 12:
                break
            await asyncio.sleep(seconds(0.2))
        for _ in range(6):
            got = await fresh_scrape()
            assert got[("amber_connections_open", ())] == 12
            assert got[("amber_hellos_total", ())] == 12
        for c in clients:
            await c.close()
    finally:
        proc.stop()
