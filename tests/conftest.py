"""Fixtures: a private redis-server per test run, settings per test, the system in-loop."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from amber_relay.redis_server import RedisServer
from amber_relay.settings import Settings
from broadcaster.server import Endpoints, serve
from tests.support import Agency, Client, alert_doc, seconds, signed


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server on a free port for the whole run (never the machine's own)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"), appendonly=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def agency() -> Agency:
    return Agency("txdps", secrets.token_hex(16))


@pytest.fixture
def other_agency() -> Agency:
    return Agency("okdps", secrets.token_hex(16))


@pytest.fixture
def agencies_file(tmp_path: Path, agency: Agency, other_agency: Agency) -> Path:
    path = tmp_path / "agencies.toml"
    path.write_text(
        f'[agencies.{agency.id}]\nsecret = "{agency.secret}"\njurisdiction = ["48"]\n'
        f'[agencies.{other_agency.id}]\nsecret = "{other_agency.secret}"\njurisdiction = ["40"]\n'
        f'[agencies.ncmec]\nsecret = "{agency.secret}"\njurisdiction = ["US"]\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def settings(redis_server: RedisServer, agencies_file: Path) -> Settings:
    """Settings on the private Redis, under a key prefix of this test's own."""
    return Settings(
        redis_url=redis_server.url,
        redis_prefix=f"test-{uuid.uuid4().hex[:12]}:",
        agencies_file=str(agencies_file),
        port=0,
        stream_port=0,
        stats_flush_s=0.05,
        drain_s=0.5,  # teardown closes the sockets a test left open: quickly
    )


@dataclass
class System:
    """A running API + stream server + worker in the test's event loop."""

    settings: Settings
    endpoints: Endpoints
    http: httpx.AsyncClient

    @property
    def stream_url(self) -> str:
        return self.endpoints.stream_url

    async def post(
        self, agency: Agency, doc: dict[str, Any] | bytes, content_type: str | None = None
    ) -> dict[str, Any]:
        """POST a signed alert and return the 202 body (any other status fails the test)."""
        r = await signed(self.http, "POST", "/v1/alerts", agency, doc, content_type=content_type)
        assert r.status_code == 202, r.text
        body: dict[str, Any] = r.json()
        return body

    async def status(self, agency: Agency, alert_id: str) -> dict[str, Any]:
        """The signed status of an alert (a random query makes each signature unique)."""
        path = f"/v1/alerts/{alert_id}?n={secrets.token_hex(6)}"
        r = await signed(self.http, "GET", path, agency)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def sentinel(self, agency: Agency, clients: list[Client], name: str) -> None:
        """Post an alert covering Texas and its neighbours; each client's next frame must be it.

        Frames reach a socket in stream order, so a client whose next interrupt is the
        sentinel provably got nothing before it: a check of absence without sleeping.
        (Whole states by SAME code: a square around Texas would reach into Mexico and
        the Gulf, which the US jurisdiction refuses.)
        """
        national = Agency("ncmec", agency.secret)  # jurisdiction US in the agencies file
        states = ["048000", "040000", "035000", "022000", "005000"]  # TX, OK, NM, LA, AR
        await self.post(national, alert_doc(name, same=states))
        for c in clients:
            frame = await c.next_of("interrupt")
            assert frame["alert"]["id"] == f"ncmec/{name}", frame

    async def wait_active(self, alert_id: str, lat: float, lon: float) -> None:
        """Until the poll fallback (the hub) shows the alert, i.e. the worker applied it."""
        for _ in range(250):  # bounded; applying takes milliseconds
            poll = await self.http.get("/v1/alerts/active", params={"lat": lat, "lon": lon})
            if any(a["id"] == alert_id for a in poll.json()["alerts"]):
                return
            await asyncio.sleep(seconds(0.02))
        raise AssertionError(f"{alert_id} never became active")


@contextlib.asynccontextmanager
async def running_system(settings: Settings) -> AsyncIterator[System]:
    """Serve API + stream + worker in this event loop until the block exits."""
    stop = asyncio.Event()
    ready: asyncio.Future[Endpoints] = asyncio.get_running_loop().create_future()
    assert settings.redis_url is not None
    task = asyncio.create_task(
        serve(
            settings,
            redis_url=settings.redis_url,
            with_worker=True,
            stop=stop,
            on_ready=ready.set_result,
        )
    )
    waiters: set[asyncio.Future[object]] = {task, ready}  # type: ignore[arg-type]
    async with asyncio.timeout(seconds(30)):
        done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # raises the startup error
    endpoints = ready.result()
    try:
        async with httpx.AsyncClient(base_url=endpoints.api_url, timeout=seconds(10)) as http:
            yield System(settings, endpoints, http)
    finally:
        stop.set()
        try:
            async with asyncio.timeout(seconds(30)):
                await task
        except TimeoutError:
            for t in asyncio.all_tasks():  # say what shutdown is stuck on
                t.print_stack(limit=8)
            raise


@pytest_asyncio.fixture
async def system(settings: Settings) -> AsyncIterator[System]:
    """The whole system (API, stream, worker) served in-loop on ports chosen by the OS."""
    async with running_system(settings) as running:
        yield running
