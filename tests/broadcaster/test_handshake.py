"""The stream's fast handshake answers exactly like the library, and defers when unsure."""

from __future__ import annotations

import base64
import os

import pytest
from websockets.http11 import Request
from websockets.server import ServerProtocol
from websockets.streams import StreamReader

from broadcaster._handshake import fast_accept


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
