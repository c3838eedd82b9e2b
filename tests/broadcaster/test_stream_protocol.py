"""The stream's wire protocol on live sockets: fragments, per-socket rates, the
per-address cap, split and pipelined handshakes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from amber_relay.settings import Settings
from tests.conftest import System, running_system
from tests.support import Agency, Client, alert_doc, seconds, square

pytestmark = pytest.mark.asyncio

SA = (29.42, -98.49)
HELLO = json.dumps({"type": "hello", "lat": SA[0], "lon": SA[1]})


def masked(payload: bytes, opcode: int = 0x1, fin: bool = True) -> bytes:
    """A client frame (RFC 6455 5.2) with a random mask."""
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    else:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def upgrade_request(path: str = "/v1/stream", host: str = "127.0.0.1") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


class RawSocket:
    """A bare TCP client: we choose exactly which bytes go in which segment."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, stream_url: str) -> RawSocket:
        host, port = stream_url.split("//")[1].split("/")[0].rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response_head(self) -> bytes:
        async with asyncio.timeout(seconds(10)):
            return await self.reader.readuntil(b"\r\n\r\n")

    async def frame(self) -> tuple[int, bytes]:
        """The next server frame (unfragmented, < 64 KiB): first byte and payload."""
        async with asyncio.timeout(seconds(10)):
            b0, b1 = await self.reader.readexactly(2)
            n = b1 & 0x7F
            if n == 126:
                n = int.from_bytes(await self.reader.readexactly(2), "big")
            return b0, await self.reader.readexactly(n)

    async def text_frame(self) -> dict[str, object]:
        """The next server frame, which must be a text frame."""
        b0, payload = await self.frame()
        assert b0 == 0x81, hex(b0)
        frame: dict[str, object] = json.loads(payload)
        return frame

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def closed_with(ws: ClientConnection) -> tuple[int, str]:
    """Read until the server closes; its close code and reason."""
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(seconds(10)):
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def test_fragmented_hello_is_reassembled(system: System) -> None:
    """A hello sent in three fragments (RFC 6455 5.4) is one message: it gets welcome."""
    async with connect(system.stream_url, compression=None) as ws:
        await ws.send([HELLO[:10], HELLO[10:20], HELLO[20:]])
        welcome = json.loads(await asyncio.wait_for(ws.recv(), seconds(10)))
        assert welcome["type"] == "welcome"


async def test_fragments_with_a_ping_between_and_split_utf8(system: System) -> None:
    """Fragments split inside a UTF-8 sequence, with a ping between them, reassemble."""
    raw = await RawSocket.open(system.stream_url)
    payload = json.dumps(
        {"type": "hello", "lat": SA[0], "lon": SA[1], "seen": [["é-ñ", 1]]}, ensure_ascii=False
    ).encode()
    cut = payload.index("é".encode()) + 1  # inside the two-byte sequence
    await raw.send(
        upgrade_request()
        + masked(payload[:cut], fin=False)
        + masked(b"", opcode=0x9)
        + masked(payload[cut:], opcode=0x0)
    )
    assert (await raw.response_head()).startswith(b"HTTP/1.1 101")
    got = sorted([await raw.frame(), await raw.frame()])
    assert got[0] == (0x81, got[0][1]) and json.loads(got[0][1])["type"] == "welcome"
    assert got[1] == (0x8A, b"")  # the pong to the ping between the fragments
    await raw.close()


async def test_fragmented_message_over_max_frame_bytes_is_1009(system: System) -> None:
    """The reassembled message is bounded by max_frame_bytes (1009), not each fragment."""
    limit = system.settings.max_frame_bytes
    chunk = "x" * (limit // 4)
    async with connect(system.stream_url, compression=None, max_size=None) as ws:
        with contextlib.suppress(ConnectionClosed):
            await ws.send(['{"type":"hello","pad":"', chunk, chunk, chunk, chunk, '"}'])
        code, _ = await closed_with(ws)
    assert code == 1009


async def test_too_many_fragments_is_1008(system: System) -> None:
    """Hundreds of empty fragments do not hold the socket: over stream_max_fragments, 1008."""
    parts = ["{"] + [""] * (system.settings.stream_max_fragments + 5) + ["}"]
    async with connect(system.stream_url, compression=None) as ws:
        with contextlib.suppress(ConnectionClosed):
            await ws.send(parts)
        code, reason = await closed_with(ws)
    assert (code, "fragments" in reason) == (1008, True)


@pytest_asyncio.fixture
async def strict(settings: Settings) -> AsyncIterator[System]:
    """A system with small per-socket rates and a per-address cap of 3."""
    tight = settings.replace(
        stream_move_rate_per_s=1.0,
        stream_ack_rate_per_s=1.0,
        stream_ping_rate_per_s=1.0,
        stream_rate_burst=5,
        stream_max_connections_per_address=3,
    )
    async with running_system(tight) as running:
        yield running


@pytest.mark.parametrize("kind", ["move", "ack", "ping"])
async def test_floods_are_closed_with_1008(strict: System, kind: str) -> None:
    """A socket sending moves, acks or pings faster than its rate (after the burst) is
    closed with 1008 and a reason naming the kind; a client within the rate is not."""
    c = await Client.open(strict.stream_url, lat=SA[0], lon=SA[1])
    frame = (
        {"type": "move", "lat": SA[0], "lon": SA[1]}
        if kind == "move"
        else {"type": "ack", "id": "TX-NONE", "version": 1, "event": "shown"}
    )
    with contextlib.suppress(ConnectionClosed):
        for _ in range(500):
            if kind == "ping":
                await c.ws.ping()
            else:
                await c.send(frame)
    code, reason = await closed_with(c.ws)
    assert code == 1008
    assert f"more than 1 {kind}" in reason


async def test_a_client_within_its_rates_is_served(strict: System, agency: Agency) -> None:
    """The burst lets a normal client ack and move freely: it stays open and served."""
    c = await Client.open(strict.stream_url, lat=SA[0], lon=SA[1])
    for _ in range(strict.settings.stream_rate_burst - 1):
        await c.send({"type": "ack", "id": "TX-NONE", "version": 1, "event": "shown"})
        await c.send({"type": "move", "lat": SA[0], "lon": SA[1]})
    async with asyncio.timeout(seconds(10)):
        await c.ws.ping()
    await strict.post(agency, alert_doc("TX-RATE", polygon=square(*SA, 0.1)))
    assert (await c.next_of("interrupt"))["alert"]["id"].endswith("TX-RATE")


async def test_per_address_cap_refuses_with_429(strict: System) -> None:
    """Over stream_max_connections_per_address from one address: HTTP 429 problem+json;
    another address still connects; a closed connection frees its place."""
    held = [await Client.open(strict.stream_url, lat=SA[0], lon=SA[1]) for _ in range(3)]
    with pytest.raises(InvalidStatus) as refused:
        async with connect(strict.stream_url, open_timeout=seconds(10)):
            pass
    response = refused.value.response
    assert response.status_code == 429
    assert response.headers["Content-Type"] == "application/problem+json"
    assert json.loads(response.body)["code"] == "too_many_connections"
    # another source address is not affected
    async with connect(
        strict.stream_url, open_timeout=seconds(10), local_addr=("127.0.0.2", 0)
    ) as other:
        await other.send(HELLO)
        assert json.loads(await asyncio.wait_for(other.recv(), seconds(10)))["type"] == "welcome"
    await held[0].close()
    for _ in range(250):  # bounded: the server sees the close a moment later
        try:
            again = await Client.open(strict.stream_url, lat=SA[0], lon=SA[1])
            break
        except InvalidStatus:
            await asyncio.sleep(seconds(0.02))
    else:
        raise AssertionError("the closed connection's place was never freed")
    await again.close()


@pytest.mark.parametrize("path", ["/v1/stream", "/v1/stream?v=1"], ids=["fast", "library"])
async def test_split_handshake(system: System, path: str) -> None:
    """A request whose headers arrive in several TCP segments is answered once complete,
    by the fast path or by the library's parser."""
    raw = await RawSocket.open(system.stream_url)
    request = upgrade_request(path)
    for i in range(0, len(request), 17):
        await raw.send(request[i : i + 17])
        # Let each piece be read on its own (no readiness signal exists for "read").
        await asyncio.sleep(0.01)
    assert (await raw.response_head()).startswith(b"HTTP/1.1 101")
    await raw.send(masked(HELLO.encode()))
    assert (await raw.text_frame())["type"] == "welcome"
    await raw.close()


@pytest.mark.parametrize("path", ["/v1/stream", "/v1/stream?v=1"], ids=["fast", "library"])
async def test_pipelined_handshake_and_hello(system: System, path: str) -> None:
    """The handshake and the first frame in one segment: 101, then welcome, nothing lost."""
    raw = await RawSocket.open(system.stream_url)
    await raw.send(upgrade_request(path) + masked(HELLO.encode()))
    assert (await raw.response_head()).startswith(b"HTTP/1.1 101")
    assert (await raw.text_frame())["type"] == "welcome"
    await raw.close()


async def test_a_closed_flooder_that_never_closes_is_dropped(settings: Settings) -> None:
    """A flooder closed with 1008 that neither reads nor closes its side is dropped by the
    sweep within hello_timeout_s: its place under the per-address cap comes back."""
    tight = settings.replace(
        stream_max_connections_per_address=1, hello_timeout_s=0.5, stream_rate_burst=2
    )
    async with running_system(tight) as system:
        raw = await RawSocket.open(system.stream_url)
        ack = masked(
            json.dumps({"type": "ack", "id": "X", "version": 1, "event": "shown"}).encode()
        )
        await raw.send(upgrade_request() + masked(HELLO.encode()) + ack * 20_000)
        assert (await raw.response_head()).startswith(b"HTTP/1.1 101")
        for _ in range(500):  # bounded: the sweep runs every hello_timeout_s / 2
            try:
                c = await Client.open(system.stream_url, lat=SA[0], lon=SA[1])
                break
            except InvalidStatus as refused:
                assert refused.response.status_code == 429
                await asyncio.sleep(seconds(0.02))
        else:
            raise AssertionError("the flooder's place was never freed")
        await c.close()
        raw.writer.transport.abort()  # its unsent flood is dropped, not flushed
        with contextlib.suppress(ConnectionError):
            await raw.close()
