"""The load generator's WebSocket client: a minimal handshake and framing, one small object.

The load generator holds 10-20k sockets per process and must read a fan-out burst as
fast as the server writes it, so it skips what a real client library does per socket
(a task, a queue, a random key and mask per frame). What it keeps: an RFC 6455
handshake, masked client frames, unmasked server frames, ping -> pong, close.

A fixed ``Sec-WebSocket-Key`` and an all-zero masking key are deliberate: the server
checks neither for randomness, and precomputing them keeps a handshake to a few bytes
of Python work. Do not copy this into a real client.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import struct
import time
from typing import cast

__all__ = [
    "ACCEPT",
    "KEY",
    "LoadClient",
    "Sink",
    "client_frame",
    "handshake_request",
    "parse_frame",
]

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
KEY = base64.b64encode(b"amber-relay-load").decode()
ACCEPT = base64.b64encode(hashlib.sha1((KEY + _GUID).encode()).digest())

OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x8, 0x9, 0xA

# Connection states, as small ints to keep the per-socket object lean.
HANDSHAKE, WELCOME, OPEN, CLOSED = 0, 1, 2, 3

_monotonic = time.monotonic
_ZERO_MASK = b"\x00\x00\x00\x00"
_TCP_ESTABLISHED = b"\x01"  # first byte of struct tcp_info: tcpi_state


def handshake_request(host: str, port: int, path: str) -> bytes:
    """The HTTP upgrade request every load client sends (identical bytes for all)."""
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A complete masked client frame (FIN set) with a zero masking key.

    XOR with zeros leaves the payload as is, so no per-byte masking work is done.
    """
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + _ZERO_MASK + payload


def parse_frame(buf: bytes, pos: int) -> tuple[int, bytes, int] | None:
    """One unmasked server frame at ``buf[pos:]``: (opcode, payload, end), or None if partial.

    Raises:
        ValueError: a masked or fragmented server frame (neither is sent by the servers
            measured here, and a server must not mask).
    """
    size = len(buf)
    if size - pos < 2:
        return None
    b0, b1 = buf[pos], buf[pos + 1]
    if b1 & 0x80 or not b0 & 0x80:
        raise ValueError("masked or fragmented server frame")
    n = b1 & 0x7F
    p = pos + 2
    if n == 126:
        if size < p + 2:
            return None
        n = int.from_bytes(buf[p : p + 2], "big")
        p += 2
    elif n == 127:
        if size < p + 8:
            return None
        n = int.from_bytes(buf[p : p + 8], "big")
        p += 8
    end = p + n
    if size < end:
        return None
    return b0 & 0x0F, buf[p:end], end


class Sink:
    """What a load process does with frames: the per-process side of every client."""

    request = b""
    """The upgrade request, the same bytes for every client of the process."""

    def welcomed(self, client: LoadClient, node: str) -> None:
        """A client got its welcome (connect + handshake + hello done)."""

    def text(self, idx: int, payload: bytes, now: float) -> None:
        """A text frame after the welcome, received at ``now`` (time.monotonic)."""

    def lost(self, client: LoadClient) -> None:
        """A client's socket closed."""


class LoadClient(asyncio.Protocol):
    """One load-test socket: handshake, hello, then timestamps of frames for the sink."""

    __slots__ = ("buf", "hello", "idx", "sink", "state", "transport", "waiter")

    def __init__(self, sink: Sink, idx: int, hello: bytes, waiter: asyncio.Future[None]) -> None:
        self.sink = sink
        self.idx = idx
        self.hello: bytes | None = hello
        self.buf = b""
        self.state = HANDSHAKE
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[None] | None = waiter

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = t = cast(asyncio.Transport, transport)
        t.write(self.sink.request)

    def data_received(self, data: bytes) -> None:
        now = _monotonic()
        if self.buf:
            data = self.buf + data
            self.buf = b""
        pos = 0
        if self.state == HANDSHAKE:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.buf = data
                return
            head = data[:end]
            if not head.startswith(b"HTTP/1.1 101") or ACCEPT not in head:
                self._fail(f"handshake refused: {head[:200]!r}")
                return
            self.state = WELCOME
            assert self.transport is not None and self.hello is not None
            self.transport.write(self.hello)
            self.hello = None
            pos = end + 4
        size = len(data)
        try:
            while pos < size:
                frame = parse_frame(data, pos)
                if frame is None:
                    self.buf = data[pos:]
                    return
                op, payload, pos = frame
                if op == OP_TEXT:
                    if self.state == OPEN:
                        self.sink.text(self.idx, payload, now)
                    else:
                        self._welcome(payload)
                elif op == OP_PING and self.transport is not None:
                    self.transport.write(client_frame(OP_PONG, payload))
                elif op == OP_CLOSE:
                    self._fail(f"closed by server: {payload[2:100]!r}")
                    return
        except ValueError as exc:
            self._fail(str(exc))

    def _welcome(self, payload: bytes) -> None:
        try:
            msg = json.loads(payload)
        except ValueError:
            msg = None
        if not isinstance(msg, dict) or msg.get("type") != "welcome":
            self._fail(f"expected a welcome frame, got {payload[:200]!r}")
            return
        self.state = OPEN
        self.sink.welcomed(self, str(msg.get("node", "?")))
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, reason: str) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionError(reason))
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        was_open = self.state == OPEN
        self.state = CLOSED
        self.transport = None
        self._fail(f"connection lost: {exc!r}" if exc else "connection closed")
        if was_open:
            self.sink.lost(self)

    def stall(self) -> None:
        """Stop reading for good: a client that never reads (slow-client runs)."""
        if self.transport is not None:
            self.transport.pause_reading()

    def probe(self) -> None:
        """Send a ping: if the server has dropped this socket, its kernel answers with a reset.

        A client that does not read keeps a zero receive window, so the reset the
        server sent when it dropped the socket lay outside the window and was
        discarded: without new traffic the socket looks open for ever.
        """
        if self.transport is not None:
            self.transport.write(client_frame(OP_PING, b"probe"))

    def peer_closed(self) -> bool:
        """Whether the kernel reports this socket anything but ESTABLISHED (after a probe)."""
        t = self.transport
        if t is None:
            return True
        sock = t.get_extra_info("socket")
        if sock is None:
            return False
        state: bytes = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)
        return state != _TCP_ESTABLISHED

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
