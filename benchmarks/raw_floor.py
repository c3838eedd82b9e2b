"""The raw floor: the least a Python server can do to put one frame on N WebSocket sockets.

A bare uvloop server: a hand-written RFC 6455 handshake, a pre-built welcome frame for
each client's first frame (its hello), and ``POST /publish`` which answers 202, builds
one text frame from the request body and writes the same bytes to every open
transport. No parsing of the hello, no bookkeeping, no backpressure: nothing a real
broadcaster could skip is skipped here, so no Python broadcaster on this machine can
beat it. The load test measures amber-relay as a ratio to this floor.

Usage::

    python benchmarks/raw_floor.py [--host 127.0.0.1] [--port 0] [--exit-on-stdin-eof]

Prints one JSON line ``{"event": "ready", "api_url", "stream_url", "node"}`` when
listening (the same shape as ``amber-relay serve``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import socket
import sys
import threading
from typing import cast

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_MAX_REQUEST = 1 << 20


def text_frame(payload: bytes) -> bytes:
    """An unmasked text frame with FIN set."""
    n = len(payload)
    if n < 126:
        head = bytes([0x81, n])
    elif n < 65536:
        head = bytes([0x81, 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x81, 127]) + n.to_bytes(8, "big")
    return head + payload


WELCOME = text_frame(json.dumps({"type": "welcome", "node": f"raw:{os.getpid()}"}).encode())


class Floor:
    """The open WebSocket transports."""

    def __init__(self) -> None:
        self.clients: set[asyncio.Transport] = set()

    def publish(self, payload: bytes) -> int:
        # The floor itself: one frame built once, one write per transport, no awaits.
        frame = text_frame(payload)
        for t in self.clients:
            t.write(frame)
        return len(self.clients)


class Conn(asyncio.Protocol):
    """One TCP connection: an HTTP request, then WebSocket frames if it upgraded."""

    __slots__ = ("buf", "floor", "transport", "ws")

    def __init__(self, floor: Floor) -> None:
        self.floor = floor
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.ws = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.floor.clients.discard(self.transport)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.ws:
            self._frames()
        else:
            self._http()

    def _http(self) -> None:
        t = self.transport
        assert t is not None
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > _MAX_REQUEST:
                t.close()
            return
        head = self.buf[:end].decode("latin-1").split("\r\n")
        method, path, _ = (head[0].split(" ") + ["", "", ""])[:3]
        headers = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if method == "GET" and headers.get("upgrade", "").lower() == "websocket":
            key = headers.get("sec-websocket-key", "").encode()
            accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
            t.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            self.ws = True
            self.buf = self.buf[end + 4 :]
            self._frames()
        elif method == "POST" and path == "/publish":
            size = int(headers.get("content-length", "0"))
            if len(self.buf) < end + 4 + size:
                return
            body = self.buf[end + 4 : end + 4 + size]
            t.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            t.close()
            self.floor.publish(body)
        else:
            t.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            t.close()

    def _frames(self) -> None:
        # Client frames are masked; the payload is never looked at, so it is not unmasked.
        t = self.transport
        assert t is not None
        buf = self.buf
        pos = 0
        while len(buf) - pos >= 2:
            op, n = buf[pos] & 0x0F, buf[pos + 1] & 0x7F
            p = pos + 2
            if n == 126:
                if len(buf) < p + 2:
                    break
                n, p = int.from_bytes(buf[p : p + 2], "big"), p + 2
            elif n == 127:
                if len(buf) < p + 8:
                    break
                n, p = int.from_bytes(buf[p : p + 8], "big"), p + 8
            end = p + 4 + n
            if len(buf) < end:
                break
            pos = end
            if op == 0x1 and t not in self.floor.clients:
                t.write(WELCOME)
                self.floor.clients.add(t)
            elif op == 0x8:
                self.floor.clients.discard(t)
                t.close()
                break
        self.buf = buf[pos:]


def listen(host: str, port: int) -> socket.socket:
    """A listening socket with a deep accept queue (connect storms are the workload)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.setblocking(False)
    return sock


async def stdin_eof() -> None:
    """Return when stdin reaches EOF (the parent that started us is gone).

    Read in a daemon thread: it works for any stdin (pipe, file, /dev/null, tty)
    and never holds up the process's exit.
    """
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def read() -> None:
        while os.read(sys.stdin.fileno(), 4096):
            pass
        loop.call_soon_threadsafe(done.set)

    threading.Thread(target=read, daemon=True, name="stdin-eof").start()
    await done.wait()


async def main(args: argparse.Namespace) -> None:
    """Serve until stdin closes (``--exit-on-stdin-eof``) or the process is signalled."""
    floor = Floor()
    loop = asyncio.get_running_loop()
    sock = listen(args.host, args.port)
    server = await loop.create_server(lambda: Conn(floor), sock=sock)
    port = sock.getsockname()[1]
    ready = {
        "event": "ready",
        "api_url": f"http://{args.host}:{port}",
        "stream_url": f"ws://{args.host}:{port}/v1/stream",
        "node": f"raw:{os.getpid()}",
    }
    print(json.dumps(ready), flush=True)
    try:
        if args.exit_on_stdin_eof:
            await stdin_eof()
        else:
            await asyncio.Event().wait()
    finally:
        server.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags shared by the baseline servers."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 = any free port (printed when ready)")
    p.add_argument("--exit-on-stdin-eof", action="store_true", help="stop when stdin closes")
    return p.parse_args(argv)


if __name__ == "__main__":
    import uvloop

    try:
        uvloop.run(main(parse_args()))
    except KeyboardInterrupt:
        pass
