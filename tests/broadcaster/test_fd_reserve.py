"""A flooded API port cannot starve the stream of file descriptors (real subprocess)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from amber_relay.settings import Settings
from tests.broadcaster._raw import host_port
from tests.conftest import running_system
from tests.support import Agency, Client, ServerProcess, alert_doc, square

pytestmark = pytest.mark.asyncio

SA = (29.42, -98.49)
FLOOD = 5000


@pytest.mark.timeout(240)
async def test_stream_serves_while_5000_connections_hold_the_api_port(
    settings: Settings, agency: Agency
) -> None:
    """With RLIMIT_NOFILE at 4,096 and 5,000 idle or trickling API connections (no
    per-address cap), a new stream client connects and gets a new alert within 2 s."""
    env = {
        "AMBER_REDIS_URL": str(settings.redis_url),
        "AMBER_REDIS_PREFIX": settings.redis_prefix,
        "AMBER_AGENCIES_FILE": str(settings.agencies_file),
        "AMBER_API_MAX_CONNECTIONS_PER_ADDRESS": "0",
        "AMBER_API_HEADER_TIMEOUT_S": "120",
    }
    victim = ServerProcess(["serve", "--port", "0", "--stream-port", "0"], env, nofile=4096)
    writers: list[asyncio.StreamWriter] = []
    try:
        ready = await victim.wait_ready()
        api = host_port(ready["api_url"])
        for i in range(FLOOD):
            _reader, writer = await asyncio.open_connection(*api)
            if i % 2:
                writer.write(b"GET /v1/config HTTP/1.1\r\nHo")  # trickling, never finished
            writers.append(writer)
        # The alert is posted through another serving process on the same Redis: the
        # flooded API is (rightly) full.
        async with running_system(settings) as poster:
            client = await Client.open(ready["stream_url"], lat=SA[0], lon=SA[1])
            await poster.post(agency, alert_doc("TX-FLOOD", polygon=square(*SA, 0.1)))
            frame = await client.next_of("interrupt", timeout_s=2)
            assert frame["alert"]["id"] == "txdps/TX-FLOOD"
            await client.close()
        assert victim.proc.poll() is None
    finally:
        for w in writers:
            w.close()
        with contextlib.suppress(OSError):
            await asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)
        victim.stop()
