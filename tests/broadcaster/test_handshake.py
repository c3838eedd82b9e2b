"""The stream's fast handshake answers exactly like the library, and defers when unsure;
any policy on the library's protocol turns it off (checked on live sockets)."""

from __future__ import annotations

import asyncio
import base64
import os
import string
from collections.abc import AsyncIterator, Callable, Sequence

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.datastructures import Headers
from websockets.exceptions import InvalidOrigin, InvalidStatus
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol
from websockets.streams import StreamReader
from websockets.typing import Origin, Subprotocol

from amber_relay import geodata
from amber_relay.settings import Settings
from broadcaster._handshake import fast_accept, fast_path_allowed
from broadcaster.hub import Hub
from broadcaster.stream import StreamServer
from tests.support import seconds


def request(key: str, *extra: str, path: str = "/v1/stream") -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        "Host: 127.0.0.1:8001",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def library_accept(raw: bytes) -> str:
    """Sec-WebSocket-Accept as the websockets library computes it for the same request."""
    reader = StreamReader()
    reader.feed_data(raw)
    parser = Request.parse(reader.read_line)
    try:
        next(parser)
    except StopIteration as done:
        req = done.value
    response = ServerProtocol().accept(req)
    assert response.status_code == 101
    return str(response.headers["Sec-WebSocket-Accept"])


def test_fast_accept_matches_the_library() -> None:
    """For a canonical upgrade request the accept key equals the library's, and the
    request's length is reported so a hello in the same read is not lost."""
    key = base64.b64encode(os.urandom(16)).decode()
    raw = request(key)
    answer = fast_accept(raw + b"\x81\x05hello")
    assert answer is not None
    response, used = answer
    assert used == len(raw)
    assert response.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert f"Sec-WebSocket-Accept: {library_accept(raw)}\r\n".encode() in response


@pytest.mark.parametrize(
    "raw",
    [
        request("dGhlIHNhbXBsZSBub25jZQ==", path="/v1/stream?x=1"),
        request("dGhlIHNhbXBsZSBub25jZQ==", path="/elsewhere"),
        request("dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="),
        request("bm90IDE2IGJ5dGVz"),
        request("dGhlIHNhbXBsZSBub25jZQ==", "Content-Length: 4"),
        request("dGhlIHNhbXBsZSBub25jZQ==")[:40],
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ],
    ids=["query", "other path", "duplicate key", "short key", "body", "partial", "tls"],
)
def test_fast_accept_defers_to_the_library_when_unsure(raw: bytes) -> None:
    """Anything but the canonical request is left to the library's parser and checks."""
    assert fast_accept(raw) is None


SUFFIX = b"\x81\x85PIPED"  # the start of a first frame, pipelined after the request


def library_answer(raw: bytes) -> Response | None:
    """What the stream's library path answers ``raw`` (as stream.Connection does: the
    path check, then ``ServerProtocol.accept``); None while the request is incomplete."""
    protocol = ServerProtocol()
    protocol.receive_data(raw)
    for received in protocol.events_received():
        if isinstance(received, Request):
            if received.path.split("?", 1)[0] != "/v1/stream":
                return protocol.reject(404, "no stream here\n")
            return protocol.accept(received)
    chunks = protocol.data_to_send()
    if not chunks:
        return None
    written = b"".join(chunks)
    # The library refused the request itself: with a response, or by closing (400 here).
    status = int(written.split(b" ", 2)[1]) if written else 400
    return protocol.reject(status, "")


def test_library_answer_sees_canonical_requests_as_101() -> None:
    """The oracle itself: the library accepts the canonical request and refuses junk."""
    key = base64.b64encode(os.urandom(16)).decode()
    answer = library_answer(request(key))
    assert answer is not None and answer.status_code == 101
    junk = library_answer(b"GET /v1/stream HTTP/1.1\r\nHost x\r\n\r\n")
    assert junk is not None and junk.status_code == 400


_VALID_KEY = st.binary(min_size=16, max_size=16).map(lambda b: base64.b64encode(b).decode())


def _key() -> st.SearchStrategy[str]:
    valid = _VALID_KEY
    odd = st.sampled_from(["", "abc", "dGhlIHNhbXBsZSBub25jZQ", "dGhl IHNhbXBsZSBub25jZQ==", "*"])
    return st.one_of(valid, valid, odd, st.text(st.characters(min_codepoint=32, max_codepoint=126)))


_TOKEN = st.text(alphabet=string.ascii_letters + string.digits + "-_.!#", min_size=1, max_size=12)
_VALUE = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20)
_CONNECTION = st.one_of(
    st.sampled_from(
        [
            "Upgrade",
            "upgrade",
            "keep-alive, Upgrade",
            "keep-alive,Upgrade",
            "Upgrade, ",
            ", Upgrade",
            "Upgrade,,close",
            '"Upgrade"',
            "Up grade",
            "close",
            "",
            "Upgrade;x",
            "upgrade , close",
            "Upgrade, HTTP2-Settings",
            "Upgrade\t,close",
        ]
    ),
    _VALUE,
)


@st.composite
def upgrade_requests(draw: st.DrawFn) -> bytes:
    """Upgrade requests near the canonical one: headers dropped, doubled, recased,
    spaced, reordered, odd values, extra headers, other request lines. Half are
    "tame" (each choice is rarely odd), so the fast path's 101 is well exercised."""
    tame = draw(st.booleans())

    def pick(usual: object, *odd: object) -> st.SearchStrategy[object]:
        # tame: the usual choice 19 times in 20; wild: as often as each odd one
        weight = 19 * max(1, len(odd)) if tame else 1
        return st.sampled_from([usual] * weight + list(odd))

    def value(usual: str, *odd: str | st.SearchStrategy[str]) -> str:
        chosen = draw(pick(usual, *odd))
        return draw(chosen) if isinstance(chosen, st.SearchStrategy) else str(chosen)

    line = value(
        "GET /v1/stream HTTP/1.1",
        "GET /v1/stream HTTP/1.0",
        "GET /v1/stream?x=1 HTTP/1.1",
        "POST /v1/stream HTTP/1.1",
        "get /v1/stream HTTP/1.1",
        "GET  /v1/stream HTTP/1.1",
        "GET /v1/Stream HTTP/1.1",
    )
    candidates: list[tuple[str, bool, Callable[[], str]]] = [
        ("Host", True, lambda: value("127.0.0.1:8001", "example.org", "")),
        ("Upgrade", True, lambda: value("websocket", "WebSocket", "websocket, h2c", "h2c", "")),
        ("Connection", True, lambda: value("Upgrade", _CONNECTION)),
        ("Sec-WebSocket-Key", True, lambda: value(draw(_VALID_KEY), _key())),
        ("Sec-WebSocket-Version", True, lambda: value("13", "8", "13, 8", "013", "")),
        ("Origin", False, lambda: value("https://app.example", "null", "", "x y")),
        ("Sec-WebSocket-Protocol", False, lambda: value("amber.v1", "a, b", ",", "a b")),
        ("Sec-WebSocket-Extensions", False, lambda: value("permessage-deflate", "x; y=", ";")),
        ("Content-Length", False, lambda: value("0", "4", "x")),
        ("Transfer-Encoding", False, lambda: "chunked"),
        ("User-Agent", False, lambda: draw(_VALUE)),
    ]
    headers: list[tuple[str, str]] = []
    for name, required, make in candidates:
        copies = int(str(draw(pick(1, 0, 2) if required else pick(0, 1, 2, 1))))
        for _ in range(copies):
            spelled = value(name, name.lower(), name.upper())
            headers.append((spelled, make()))
    headers += draw(st.lists(st.tuples(_TOKEN, _VALUE), max_size=3))
    filler = int(str(draw(pick(0, 125, 126, 127, 128, 129))))
    headers += [(f"X-Filler-{i}", "1") for i in range(filler)]
    order = draw(st.permutations(headers))
    lines = [line] + [
        f"{n}{value(': ', ':', ':  ', chr(9) + ':', ' : ')}{v}{value('', ' ', chr(9))}"
        for n, v in order
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(upgrade_requests())
def test_fast_path_is_a_subset_of_the_library(raw: bytes) -> None:
    """For any generated request: a fast 101 implies the library answers 101 with the
    same Sec-WebSocket-Accept and reads the same number of bytes; anything else is left
    to the library (None)."""
    fast = fast_accept(raw + SUFFIX)
    event("fast 101" if fast is not None else "library")
    if fast is None:
        return
    response, used = fast
    assert (raw + SUFFIX)[used:] == SUFFIX
    library = library_answer(raw)
    assert library is not None and library.status_code == 101, (raw, library)
    assert (
        f"Sec-WebSocket-Accept: {library.headers['Sec-WebSocket-Accept']}\r\n".encode() in response
    )
    assert "Sec-WebSocket-Protocol" not in library.headers
    assert "Sec-WebSocket-Extensions" not in library.headers


@pytest.mark.parametrize(
    "raw",
    [
        request(
            "dGhlIHNhbXBsZSBub25jZQ==", "Origin: https://a.example", "Origin: https://b.example"
        ),
        request("dGhlIHNhbXBsZSBub25jZQ==", 'Connection: Upgrade, "x"'),
        request("dGhlIHNhbXBsZSBub25jZQ==", "Connection: keep-alive"),
        request("dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol: a b"),
        ("GET /v1/stream HTTP/1.1\r\n" + "".join(f"X-{i}: 1\r\n" for i in range(130))).encode()
        + request("dGhlIHNhbXBsZSBub25jZQ==").split(b"\r\n", 1)[1],
        request("dGhlIHNhbXBsZSBub25jZQ==").replace(b"Host: 127.0.0.1:8001\r\n", b""),
    ],
    ids=[
        "two origins",
        "quoted connection token",
        "two connection headers",
        "bad subprotocol",
        "130 headers",
        "no host",
    ],
)
def test_fast_path_defers_what_the_library_judges(raw: bytes) -> None:
    """Duplicate Origin, a Connection list that is not simple, subprotocols, too many
    headers and a missing Host all go to the library (which refuses the first four)."""
    assert fast_accept(raw) is None


def test_any_library_policy_disables_the_fast_path() -> None:
    """Origins, subprotocols, extensions or an overridden handshake method on the
    library's protocol turn the fast path off instead of being skipped by it."""

    class Strict(ServerProtocol):
        def process_origin(self, headers: Headers) -> Origin | None:
            raise InvalidOrigin(None)

    def pick(protocol: ServerProtocol, offered: Sequence[Subprotocol]) -> Subprotocol | None:
        return None

    assert fast_path_allowed(ServerProtocol())
    assert fast_path_allowed(ServerProtocol(max_size=1024))
    assert not fast_path_allowed(ServerProtocol(origins=[Origin("https://app.example")]))
    assert not fast_path_allowed(ServerProtocol(subprotocols=[Subprotocol("amber.v1")]))
    assert not fast_path_allowed(ServerProtocol(extensions=[ServerPerMessageDeflateFactory()]))
    assert not fast_path_allowed(ServerProtocol(select_subprotocol=pick))
    assert not fast_path_allowed(Strict())


@pytest.fixture(scope="module")
def geo() -> geodata.GeoData:
    return geodata.load()


@pytest_asyncio.fixture
async def policy_server(
    geo: geodata.GeoData, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[StreamServer, str]]:
    """A live stream server whose library protocol carries a policy (origins or subprotocols)."""
    stream = StreamServer(Hub(geo, cell_deg=0.125), Settings(), node="test:1", **request.param)
    server = await asyncio.get_running_loop().create_server(stream.protocol_factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield stream, f"ws://127.0.0.1:{port}/v1/stream"
    finally:
        stream.close_all()
        server.close()
        await server.wait_closed()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "policy_server", [{"origins": [Origin("https://app.example")]}], indirect=True
)
async def test_origins_policy_applies_to_canonical_requests(
    policy_server: tuple[StreamServer, str],
) -> None:
    """With origins configured, the canonical request is judged by the library: no or a
    foreign Origin gets 403, the allowed one 101."""
    stream, url = policy_server
    assert not stream.fast_handshake
    for origin in (None, Origin("https://evil.example")):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, origin=origin, compression=None, open_timeout=seconds(10)):
                pass
        assert refused.value.response.status_code == 403
    async with connect(
        url, origin=Origin("https://app.example"), compression=None, open_timeout=seconds(10)
    ):
        pass


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "policy_server", [{"subprotocols": [Subprotocol("amber.v1")]}], indirect=True
)
async def test_subprotocols_policy_applies_to_canonical_requests(
    policy_server: tuple[StreamServer, str],
) -> None:
    """With subprotocols configured, a request offering none is refused (400) and one
    offering amber.v1 gets it in the 101."""
    stream, url = policy_server
    assert not stream.fast_handshake
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, compression=None, open_timeout=seconds(10)):
            pass
    assert refused.value.response.status_code == 400
    async with connect(
        url, subprotocols=[Subprotocol("amber.v1")], compression=None, open_timeout=seconds(10)
    ) as ws:
        assert ws.subprotocol == "amber.v1"


@pytest.mark.asyncio
@pytest.mark.parametrize("policy_server", [{}], indirect=True)
@pytest.mark.parametrize(
    "extra",
    [("Origin: https://a.example", "Origin: https://b.example"), ('Connection: Upgrade, "x"',)],
    ids=["two origins", "quoted connection token"],
)
async def test_live_fast_server_refuses_what_the_library_refuses(
    policy_server: tuple[StreamServer, str], extra: tuple[str, ...]
) -> None:
    """Two Origin headers or an odd Connection list get the library's 400 on a live
    socket, not the fast path's 101."""
    stream, url = policy_server
    assert stream.fast_handshake
    port = int(url.split(":")[2].split("/")[0])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request(base64.b64encode(os.urandom(16)).decode(), *extra))
        async with asyncio.timeout(seconds(10)):
            head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400 "), head
    finally:
        writer.close()
        await writer.wait_closed()
