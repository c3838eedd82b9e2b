"""The client stream server: WebSocket on ``/v1/stream``, one small object per socket.

Each connection is an :class:`asyncio.Protocol` driving the ``websockets`` library's
sans-I/O :class:`~websockets.server.ServerProtocol`: the library keeps the WebSocket
rules (handshake, framing, UTF-8, close), this module moves bytes. There is no task
per connection; timers are shared sweeps. Fan-out writes pre-built frames straight
to the transport.

Close codes: 4408 no hello within ``hello_timeout_s`` (retryable); 1008 a second
hello, a frame before hello, a binary frame, an invalid frame (the reason names the
JSON path), an unknown region, or over a per-socket rate or the fragment count
(:mod:`broadcaster._inbound`); 1007 not JSON or not UTF-8; 1009 a message over
``max_frame_bytes``; 1011 a bug, logged. HTTP 429 instead of the handshake for an
address holding ``stream_max_connections_per_address`` connections to this process.
Slow clients (write buffer over ``write_limit_bytes``: they cannot read a close frame
anyway) and silent ones (two ping sweeps) are aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from typing import cast

from websockets.frames import Frame
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.typing import Origin, Subprotocol

from amber_relay.settings import Settings

from . import _wire
from ._handshake import (
    PATH,
    as_problem,
    fast_accept,
    fast_path_allowed,
    too_many_connections,
)
from ._inbound import Inbound
from ._limits import AddressCap, Peer, Rate
from .hub import Hub
from .index import Cell

__all__ = ["StreamServer"]

log = logging.getLogger("amber_relay.stream")

HELLO_TIMEOUT = 4408
"""Close code for a socket that sent no hello in time: retryable, unlike 1008."""
_OPEN = State.OPEN
# A close frame with its longest reason is 131 bytes: a read after our close frame
# that is much longer is a client still sending, not one closing.
_AFTER_CLOSE_BYTES = 1024
# Longer reads are handed to the library in pieces of this size (see data_received).
_FEED_BYTES = 512

# The protocol of every socket that has sent nothing yet: never fed, never written
# to, only read (its state is CONNECTING, so send() and close() skip the WebSocket
# layer). One shared object instead of one per socket until its first bytes.
_PENDING = ServerProtocol()


class StreamServer:
    """Shared state of the stream's connections: the hub, settings, the sweeps.

    ``origins`` and ``subprotocols`` are handed to the library's
    :class:`ServerProtocol`; configuring either turns the fast handshake off, so the
    library's checks apply to every request.
    """

    def __init__(
        self,
        hub: Hub,
        settings: Settings,
        *,
        node: str,
        origins: list[Origin | None] | None = None,
        subprotocols: list[Subprotocol] | None = None,
    ) -> None:
        self.hub = hub
        self.settings = settings
        self.node = node
        self.connections: set[Connection] = set()
        self.closed_slow = 0
        self.closed_rate_limited = 0
        """Sockets closed (1008) for going over a per-socket rate (for the metrics)."""
        self.hellos = 0
        self.moves = 0
        """Plain counters read by the metrics sampler (no per-socket metrics calls)."""
        self.cap = AddressCap(settings.stream_max_connections_per_address)
        self._origins = origins
        self._subprotocols = subprotocols
        self.fast_handshake = fast_path_allowed(self.new_protocol())
        burst = settings.stream_rate_burst
        self.move_rate = Rate("move", settings.stream_move_rate_per_s, burst)
        self.ack_rate = Rate("ack", settings.stream_ack_rate_per_s, burst)
        self.ping_rate = Rate("ping/pong", settings.stream_ping_rate_per_s, burst)
        self.too_many = too_many_connections(settings.stream_max_connections_per_address)
        self._sweep_handle: asyncio.TimerHandle | None = None

    def protocol_factory(self) -> Connection:
        return Connection(self)

    def new_protocol(self, state: State = State.CONNECTING) -> ServerProtocol:
        """The library's protocol for one socket, with this server's policy."""
        return ServerProtocol(
            origins=self._origins,
            subprotocols=self._subprotocols,
            state=state,
            max_size=self.settings.max_frame_bytes,
        )

    def start_sweeps(self) -> None:
        """Start the periodic keepalive/hello-timeout sweep on the running loop."""
        loop = asyncio.get_running_loop()
        interval = min(self.settings.hello_timeout_s, self.settings.ping_interval_s) / 2
        self._sweep_interval = max(0.05, interval)
        self._last_ping = time.monotonic()
        self._sweep_handle = loop.call_later(self._sweep_interval, self._sweep)

    def stop_sweeps(self) -> None:
        if self._sweep_handle is not None:
            self._sweep_handle.cancel()
            self._sweep_handle = None

    def _sweep(self) -> None:
        # A bug in one sweep must not end the chain of sweeps (no more keepalive nor
        # hello timeouts for the life of the process): log it, schedule the next.
        try:
            self._sweep_once()
        except Exception:
            log.exception("stream sweep failed; the next one is scheduled")
        loop = asyncio.get_running_loop()
        self._sweep_handle = loop.call_later(self._sweep_interval, self._sweep)

    def _sweep_once(self) -> None:
        # One timer for all sockets instead of one per socket: memory per connection
        # is the budget that decides how many clients a process holds.
        now = time.monotonic()
        hello_deadline = now - self.settings.hello_timeout_s
        ping_due = now - self._last_ping >= self.settings.ping_interval_s
        silent_since = now - 2 * self.settings.ping_interval_s
        pings = 0
        for conn in list(self.connections):
            act = conn.act
            if act is not None and act.closing_at:
                if act.closing_at < hello_deadline:
                    conn.abort()  # sent its close frame long ago and still not gone
            elif conn.hello_done:
                if conn.last_rx < silent_since:
                    conn.abort()
                elif ping_due:
                    pings += conn.send(_wire.PING)
            elif conn.opened_at < hello_deadline:
                conn.close(HELLO_TIMEOUT, f"no hello within {self.settings.hello_timeout_s:g} s")
        if ping_due:
            self._last_ping = now
            self.hub.frames_sent["ping"] += pings

    def close_all(self, code: int = 1001, reason: str = "server shutting down") -> None:
        for conn in list(self.connections):
            conn.close(code, reason)
            if conn.transport is not None:
                conn.transport.close()  # shutting down: no lingering


class Connection(Inbound):
    """One client socket."""

    __slots__ = (
        "cell",
        "last_rx",
        "opened_at",
        "peer",
        "server",
        "slot",
        "transport",
        "writable",
        "ws",
    )

    def __init__(self, server: StreamServer) -> None:
        super().__init__()
        self.server = server
        # Made on the first bytes (fast handshake or the library's): see data_received.
        self.ws = _PENDING
        self.transport: asyncio.Transport | None = None
        # ws.state is OPEN and the transport is not closed: refreshed after every call
        # into the library (_flush), so the fan-out's send() reads one slot instead of
        # a property on another object (~0.7 us per socket, 19k sockets per alert).
        self.writable = False
        self.cell: Cell | None = None
        self.slot = -1
        self.opened_at = self.last_rx = time.monotonic()
        self.peer: Peer | None = None

    # -- asyncio.Protocol --------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A TCP server's transport; uvloop's does not subclass asyncio.Transport.
        self.transport = transport = cast(asyncio.Transport, transport)
        self.server.connections.add(self)
        peer = transport.get_extra_info("peername")
        # None means over its address's cap: refused (429) on its first bytes.
        self.peer = self.server.cap.admit(str(peer[0]) if peer else "")
        if self.peer is None:
            return
        limit = self.server.settings.write_limit_bytes
        transport.set_write_buffer_limits(high=limit)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # The kernel's send buffer autotunes up to tcp_wmem's maximum (4 MiB by
            # default): a client that stops reading would hold megabytes there before
            # our own buffer, and its cap, ever grew. Pin it to the cap.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, limit)

    def data_received(self, data: bytes) -> None:
        if self.closing():
            self._after_close(data)
            return
        self.last_rx = time.monotonic()
        ws = self.ws
        if ws is _PENDING:
            if self.peer is None:
                self._refuse()
                return
            ws, data = self._open(data)
        if len(data) <= _FEED_BYTES:
            self._feed(ws, data)
            return
        # A long read is parsed piece by piece: a flooder closed by its first frames
        # must not have the rest of a 256 KiB read parsed for nothing.
        view = memoryview(data)
        for start in range(0, len(data), _FEED_BYTES):
            if self.transport is None or self.closing():
                return
            self._feed(ws, view[start : start + _FEED_BYTES])

    def _feed(self, ws: ServerProtocol, data: bytes | memoryview) -> None:
        ws.receive_data(bytes(data) if isinstance(data, memoryview) else data)
        # A close frame in this read must stop sends made while handling its events.
        self.writable = self.transport is not None and ws.state is _OPEN
        for event in ws.events_received():
            if isinstance(event, Request):
                self._handshake(event)
            elif isinstance(event, Frame):
                self._frame(event)
        self._flush()

    def eof_received(self) -> bool:
        if self.ws is _PENDING or self.closing():
            return False
        self.ws.receive_eof()
        self._flush()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        if self.peer is not None:
            self.server.cap.release(self.peer)
            self.peer = None
        act = self.act
        if act is not None:
            act.fragments = None
            if act.pending_move is not None:
                act.pending_move.cancel()
                act.pending_move = None
        if self.hello_done:
            self.server.hub.closed(self)
        self.transport = None
        self.writable = False
        if self.ws is not _PENDING:
            # The library's parser is a generator holding its protocol: a cycle only the
            # cyclic GC would free. Closing it lets refcounting free the socket's objects
            # now, and keeps full collections (tens of ms at 20k sockets) rare.
            self.ws.parser.close()

    def pause_writing(self) -> None:
        # The write buffer passed write_limit_bytes: this client is not reading fast
        # enough. Dropping it keeps memory bounded and everyone else served.
        self.server.closed_slow += 1
        log.info(
            "closing slow client: write buffer over %d bytes",
            self.server.settings.write_limit_bytes,
        )
        self.abort()

    # -- hub side ----------------------------------------------------------------

    def send(self, data: bytes) -> bool:
        """Queue a pre-built frame; false if the socket is not open."""
        t = self.transport
        if t is None or not self.writable:
            return False
        t.write(data)
        return True

    def close(self, code: int, reason: str) -> None:
        """Send a close frame (reason cut to the 123 bytes allowed) and end the TCP stream.

        An open socket lingers (see :meth:`_flush`) until the client closes, at most
        ``hello_timeout_s``; one without a WebSocket yet is closed at once.
        """
        if self.transport is None:
            return
        if self.ws.state is _OPEN:
            self.ws.send_close(code, reason.encode()[:123].decode(errors="ignore"))
            self._flush()
        elif not self.closing():
            self.transport.close()

    def abort(self) -> None:
        self.writable = False
        if self.transport is not None:
            self.transport.abort()

    # -- handling ----------------------------------------------------------------

    def _flush(self) -> None:
        t = self.transport
        self.writable = t is not None and self.ws.state is _OPEN
        if t is None or self.closing():
            return
        for chunk in self.ws.data_to_send():
            if chunk:
                t.write(chunk)
            else:
                t.close()
                return
        if self.ws.close_expected():
            # Our close frame is out. Closing now with a flooding client's bytes unread
            # makes the kernel reset the connection, which can destroy the close frame
            # unread: FIN after it, then wait for the client's close (_after_close) or
            # EOF, or the sweep's abort after hello_timeout_s.
            self.activity().closing_at = time.monotonic()
            if t.can_write_eof():
                t.write_eof()
            else:
                t.close()

    def _after_close(self, data: bytes) -> None:
        # Short reads after our close frame are parsed for the client's close (then
        # the TCP close is ours); a long one, a client still flooding, stops reading:
        # the sweep aborts the socket. Reading it would cost as much as serving it.
        t = self.transport
        if t is None:
            return
        if len(data) > _AFTER_CLOSE_BYTES:
            t.pause_reading()
            return
        self.ws.receive_data(data)
        self.ws.events_received()
        if b"" in self.ws.data_to_send():  # the library's EOF: the close arrived
            t.close()

    def _refuse(self) -> None:
        # Over the address's cap: the whole 429 answer, then close; never parsed.
        t = self.transport
        if t is None:
            return
        self.transport = None
        t.write(self.server.too_many)
        t.close()

    def _open(self, data: bytes) -> tuple[ServerProtocol, bytes]:
        """This socket's protocol, made on its first bytes; and the bytes left to parse."""
        server = self.server
        fast = fast_accept(data) if server.fast_handshake else None
        if fast is None:
            self.ws = server.new_protocol()
            return self.ws, data
        response, used = fast
        self.ws = server.new_protocol(_OPEN)
        self.writable = self.transport is not None
        if self.transport is not None:
            self.transport.write(response)
        return self.ws, data[used:]

    def _handshake(self, request: Request) -> None:
        if request.path.split("?", 1)[0] != PATH:
            response = self.ws.reject(404, f"no stream here; connect to {PATH}\n")
        elif len(request.headers.get_all("Host")) != 1:
            # HTTP/1.1 requires exactly one Host (RFC 9112 3.2); the library does not check.
            response = self.ws.reject(400, "a WebSocket upgrade needs one Host header\n")
        else:
            response = self.ws.accept(request)
        # For a refusal, send_response also half-closes (the library sends EOF).
        self.ws.send_response(as_problem(response))
        # Flush now: a hello in the same read must not overtake the 101 response.
        self._flush()
