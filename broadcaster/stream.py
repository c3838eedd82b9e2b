"""The client stream server: WebSocket on ``/v1/stream``, one small object per socket.

Each connection is an :class:`asyncio.Protocol` driving the ``websockets`` library's
sans-I/O :class:`~websockets.server.ServerProtocol`: the library keeps the WebSocket
rules (handshake, framing, UTF-8, close), this module moves bytes. There is no task
per connection; timers are shared sweeps. Fan-out writes pre-built frames straight
to the transport.

Close codes sent to clients:

- 4408: no hello within ``hello_timeout_s`` (a slow network, not a bad client: retry).
- 1008 (policy violation): a second hello; a
  frame before hello; a binary frame; a frame that is JSON but not a valid frame (the
  reason names the JSON path); an unknown region.
- 1007 (invalid data): not JSON; invalid UTF-8 (the library's own check).
- 1009 (too big): a frame over ``max_frame_bytes``.
- 1011 (internal error): a bug while handling the frame; logged.
- slow clients: a socket whose write buffer passes ``write_limit_bytes`` is aborted
  (TCP reset); a client that does not read cannot see a close frame anyway.
- keepalive: a socket silent (no pong nor frame) for two ping sweeps is aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from typing import cast

import msgspec
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from amber_relay import frames
from amber_relay.settings import Settings

from . import _wire
from ._handshake import PATH, fast_accept
from .hub import Hub
from .index import Cell

__all__ = ["StreamServer"]

log = logging.getLogger("amber_relay.stream")

HELLO_TIMEOUT = 4408
"""Close code for a socket that sent no hello in time: retryable, unlike 1008."""
_OPEN = State.OPEN

# The protocol of every socket that has sent nothing yet: never fed, never written
# to, only read (its state is CONNECTING, so send() and close() skip the WebSocket
# layer). One shared object instead of one per socket until its first bytes.
_PENDING = ServerProtocol()


class StreamServer:
    """Shared state of the stream's connections: the hub, settings, the sweeps."""

    def __init__(self, hub: Hub, settings: Settings, *, node: str) -> None:
        self.hub = hub
        self.settings = settings
        self.node = node
        self.connections: set[Connection] = set()
        self.closed_slow = 0
        self.closed_rate_limited = 0
        self.hellos = 0
        self.moves = 0
        """Plain counters read by the metrics sampler (no per-socket metrics calls)."""
        self._sweep_handle: asyncio.TimerHandle | None = None

    def protocol_factory(self) -> Connection:
        return Connection(self)

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
            if conn.hello_done:
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


class Connection(asyncio.Protocol):
    """One client socket."""

    __slots__ = (
        "cell",
        "hello_done",
        "last_move",
        "last_rx",
        "lat",
        "lon",
        "opened_at",
        "pending_move",
        "region",
        "server",
        "slot",
        "transport",
        "writable",
        "ws",
    )

    def __init__(self, server: StreamServer) -> None:
        self.server = server
        # Made on the first bytes (fast handshake or the library's): see data_received.
        self.ws = _PENDING
        self.transport: asyncio.Transport | None = None
        # ws.state is OPEN and the transport is not closed: refreshed after every call
        # into the library (_flush), so the fan-out's send() reads one slot instead of
        # a property on another object (~0.7 us per socket, 19k sockets per alert).
        self.writable = False
        self.lat: float | None = None
        self.lon: float | None = None
        self.region: str | None = None
        self.cell: Cell | None = None
        self.slot = -1
        self.hello_done = False
        self.opened_at = self.last_rx = time.monotonic()
        self.last_move = 0.0
        self.pending_move: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol --------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A TCP server's transport; uvloop's does not subclass asyncio.Transport.
        self.transport = transport = cast(asyncio.Transport, transport)
        limit = self.server.settings.write_limit_bytes
        transport.set_write_buffer_limits(high=limit)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # The kernel's send buffer autotunes up to tcp_wmem's maximum (4 MiB by
            # default): a client that stops reading would hold megabytes there before
            # our own buffer, and its cap, ever grew. Pin it to the cap.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, limit)
        self.server.connections.add(self)

    def data_received(self, data: bytes) -> None:
        self.last_rx = time.monotonic()
        ws = self.ws
        if ws is _PENDING:
            ws, data = self._open(data)
        ws.receive_data(data)
        # A close frame in this read must stop sends made while handling its events.
        self.writable = self.transport is not None and ws.state is _OPEN
        for event in ws.events_received():
            if isinstance(event, Request):
                self._handshake(event)
            elif isinstance(event, Frame):
                self._frame(event)
        self._flush()

    def eof_received(self) -> bool:
        if self.ws is _PENDING:
            return False
        self.ws.receive_eof()
        self._flush()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        if self.pending_move is not None:
            self.pending_move.cancel()
            self.pending_move = None
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
        """Send a close frame (reason cut to the 123 bytes allowed) and close the TCP stream."""
        if self.transport is None:
            return
        if self.ws.state is _OPEN:
            self.ws.send_close(code, reason.encode()[:123].decode(errors="ignore"))
            self._flush()
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.writable = False
        if self.transport is not None:
            self.transport.abort()

    # -- handling ----------------------------------------------------------------

    def _flush(self) -> None:
        t = self.transport
        self.writable = t is not None and self.ws.state is _OPEN
        if t is None:
            return
        for chunk in self.ws.data_to_send():
            if chunk:
                t.write(chunk)
            else:
                t.close()
                return
        if self.ws.close_expected():
            t.close()

    def _open(self, data: bytes) -> tuple[ServerProtocol, bytes]:
        """This socket's protocol, made on its first bytes; and the bytes left to parse."""
        max_size = self.server.settings.max_frame_bytes
        fast = fast_accept(data)
        if fast is None:
            self.ws = ServerProtocol(max_size=max_size)
            return self.ws, data
        response, used = fast
        self.ws = ServerProtocol(state=_OPEN, max_size=max_size)
        self.writable = self.transport is not None
        if self.transport is not None:
            self.transport.write(response)
        return self.ws, data[used:]

    def _handshake(self, request: Request) -> None:
        if request.path.split("?", 1)[0] != PATH:
            response = self.ws.reject(404, f"no stream here; connect to {PATH}\n")
        else:
            response = self.ws.accept(request)
        # For a refusal, send_response also half-closes (the library sends EOF).
        self.ws.send_response(response)
        # Flush now: a hello in the same read must not overtake the 101 response.
        self._flush()

    def _frame(self, frame: Frame) -> None:
        if frame.opcode is Opcode.TEXT:
            try:
                msg = frames.decode_client(cast(bytes, frame.data))
            except msgspec.ValidationError as exc:
                self.close(1008, f"invalid frame: {exc}")
                return
            except msgspec.DecodeError as exc:
                self.close(1007, f"not JSON: {exc}")
                return
            try:
                self._message(msg)
            except Exception:  # one client's frame must never take down the server
                log.exception("error handling a client frame")
                self.close(1011, "internal error")
        elif frame.opcode is Opcode.BINARY:
            self.close(1008, "binary frames are not accepted; send JSON text frames")

    def _message(self, msg: frames.ClientFrame) -> None:
        hub = self.server.hub
        if isinstance(msg, frames.Hello):
            if self.hello_done:
                self.close(1008, "hello already received; send move to change location")
                return
            if not self._tag(msg.lat, msg.lon, msg.region):
                return
            if len(msg.seen) > self.server.settings.max_seen:
                self.close(1008, f"seen lists at most {self.server.settings.max_seen} alerts")
                return
            self.hello_done = True
            self.server.hellos += 1
            hub.hello(self, msg.seen, self.server.node, self.server.settings.ping_interval_s)
        elif not self.hello_done:
            self.close(1008, "the first frame must be hello")
        elif isinstance(msg, frames.Move):
            self._move(msg)
        else:
            hub.ack(self, msg.id, msg.version, msg.event)

    def _tag(self, lat: float | None, lon: float | None, region: str | None) -> bool:
        if region is not None:
            if lat is not None or lon is not None:
                self.close(1008, "give either lat and lon, or region, not both")
                return False
            code = self.server.hub.geodata.region_code(region)
            if code is None:
                self.close(1008, f"unknown region {region}: expected a 5-digit county FIPS code")
                return False
            region = code
        elif lat is None or lon is None:
            self.close(1008, "give lat and lon, or region")
            return False
        self.lat, self.lon, self.region = lat, lon, region
        return True

    def _move(self, msg: frames.Move) -> None:
        # Coalesce: at most one move per interval is applied, and the latest position
        # always wins, so a burst of moves cannot make a client miss the area it ends in.
        loop = asyncio.get_running_loop()
        now = loop.time()
        wait = self.last_move + self.server.settings.move_min_interval_s - now
        if self.pending_move is not None:
            self.pending_move.cancel()
            self.pending_move = None
        if wait > 0:
            self.pending_move = loop.call_later(wait, self._apply_move, msg)
        else:
            self._apply_move(msg)

    def _apply_move(self, msg: frames.Move) -> None:
        self.pending_move = None
        if self.transport is None:
            return
        hub = self.server.hub
        hub.unfile(self)
        if not self._tag(msg.lat, msg.lon, msg.region):
            return
        self.last_move = asyncio.get_running_loop().time()
        self.server.moves += 1
        hub.moved(self)
        self._flush()
