"""A worker SIGKILLed mid-job (during a photo fetch): the job runs again, published once."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from PIL import Image
from redis.asyncio import Redis

from amber_relay.redis_server import RedisServer
from tests.support import Agency, Client, ServerProcess, alert_doc, seconds, signed, square

pytestmark = pytest.mark.asyncio

SA = (29.42, -98.49)


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 120, 30)).save(out, "PNG")
    return out.getvalue()


class SlowPhotos:
    """A loopback HTTP server: ``/fast.png`` answers at once; ``/slow.png`` holds the
    first request open for ever (the fetch the worker is killed in), answers later ones."""

    def __init__(self) -> None:
        self.slow_requested = asyncio.Event()
        self.slow_hits = 0
        self.url = ""
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._answer(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if True:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1]
            if path == b"/slow.png":
                self.slow_hits += 1
                if self.slow_hits == 1:
                    self.slow_requested.set()
                    await reader.read()  # until the killed worker's socket closes
                    return
            body = png()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nConnection: close\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()


@pytest_asyncio.fixture
async def slow_photos() -> AsyncIterator[SlowPhotos]:
    server = SlowPhotos()
    await server.start()
    yield server
    await server.close()


async def test_worker_killed_during_photo_fetch_publishes_once(
    redis_server: RedisServer, agencies_file: Path, agency: Agency, slow_photos: SlowPhotos
) -> None:
    """SIGKILL the worker while it fetches a photo (one already stored): a new worker
    runs the job again, the alert arrives once with both photos, nothing twice."""
    prefix = f"crash-{uuid.uuid4().hex[:10]}:"
    env = {
        "AMBER_REDIS_URL": redis_server.url,
        "AMBER_REDIS_PREFIX": prefix,
        "AMBER_AGENCIES_FILE": str(agencies_file),
        "AMBER_PHOTO_ALLOW_PRIVATE_HOSTS": "1",
        "AMBER_DRAIN_S": "1",
    }
    serve = ServerProcess(["serve", "--port", "0", "--stream-port", "0"], env)
    worker = ServerProcess(["worker"], env)
    second: ServerProcess | None = None
    redis: Redis = Redis.from_url(redis_server.url)
    try:
        ready = await serve.wait_ready()
        c = await Client.open(ready["stream_url"], lat=SA[0], lon=SA[1])
        doc = alert_doc(
            "TX-CRASH",
            polygon=square(*SA, 0.1),
            photos=[{"url": f"{slow_photos.url}/fast.png"}, {"url": f"{slow_photos.url}/slow.png"}],
        )
        async with httpx.AsyncClient(base_url=ready["api_url"], timeout=seconds(10)) as http:
            r = await signed(http, "POST", "/v1/alerts", agency, doc)
            assert r.status_code == 202, r.text
            # Readiness signals, no sleeps: the slow fetch is open and the fast photo is
            # stored (work done before the crash that the re-run must not duplicate).
            async with asyncio.timeout(seconds(30)):
                await slow_photos.slow_requested.wait()
                while True:
                    if [k async for k in redis.scan_iter(match=f"{prefix}media:*")]:
                        break
                    await asyncio.sleep(0.02)
            worker.kill()
            killed = time.monotonic()
            second = ServerProcess(["worker"], env)
            try:
                frame = await c.next_of("interrupt", timeout_s=60)
            except TimeoutError:
                raise AssertionError("\n".join(second.lines + ["--"] + serve.lines)) from None
            recovered = time.monotonic() - killed
            assert frame["alert"]["id"] == "txdps/TX-CRASH"
            assert len(frame["alert"]["photos"]) == 2
            assert slow_photos.slow_hits == 2
            print(
                f"\n[measure] worker SIGKILLed mid-fetch -> alert delivered {recovered:.1f} s later"
            )
            # Nothing twice: the next frame on the socket is a later alert.
            national = Agency("ncmec", agency.secret)
            r = await signed(
                http, "POST", "/v1/alerts", national, alert_doc("SENTINEL", polygon=square(*SA, 1))
            )
            assert r.status_code == 202, r.text
            assert (await c.next_of("interrupt"))["alert"]["id"] == "ncmec/SENTINEL"
            status = await signed(http, "GET", "/v1/alerts/TX-CRASH", agency)
            assert status.json()["applied_version"] == 1
    finally:
        await redis.aclose()
        for p in (serve, worker, second):
            if p is not None:
                p.stop()
