"""The API port's HTTP edge: uvicorn's h11 protocol with timeouts and connection caps.

uvicorn bounds only the idle time between keep-alive requests. This protocol adds:

- a header deadline (``api_header_timeout_s``) from the connection or the first byte of
  a request to the end of its headers, and a body deadline (``api_body_timeout_s``)
  from the headers to the end of the body: a half-sent request gets 408 and is closed;
- a cap on open connections per peer address (``api_max_connections_per_address``,
  429) and in all (``api_max_connections``, 503), the total never above a quarter of
  the process's open-file limit, so the stream port always has descriptors to accept;
- every answer the HTTP layer writes itself (the above, malformed requests) is
  problem+json.

After the application answered early (401, 413) while the body is still coming, the
connection keeps reading and discarding it for ``api_linger_s`` (at most
``api_linger_max_bytes``), like nginx's lingering close, so a client that sends its
whole body before reading (urllib, most HTTP clients) reads the answer instead of a
reset.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections.abc import Iterable
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from amber_relay.settings import Settings

from ._problem import raw_problem

__all__ = ["EdgeState", "edge_protocol"]

log = logging.getLogger("amber_relay.edge")

_FD_SHARE = 4
"""The API may hold at most 1/_FD_SHARE of the process's file descriptors."""


class _OncePer10s(logging.Filter):
    """Let uvicorn's per-request "Invalid HTTP request" warning through once per 10 s: a
    flood of garbage must not become a flood of log lines (each is answered 400)."""

    _MESSAGE = "Invalid HTTP request received."

    def __init__(self) -> None:
        super().__init__()
        self._last = -10.0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != self._MESSAGE:
            return True
        now = time.monotonic()
        if now - self._last < 10:
            return False
        self._last = now
        return True


def _quiet_uvicorn() -> None:
    uvicorn_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _OncePer10s) for f in uvicorn_log.filters):
        uvicorn_log.addFilter(_OncePer10s())


class EdgeState:
    """Connection counts of one API server (one process), shared by its connections."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        fd_cap = (
            soft // _FD_SHARE if soft != resource.RLIM_INFINITY else settings.api_max_connections
        )
        self.max_connections = max(1, min(settings.api_max_connections, fd_cap))
        self.open = 0
        self.per_address: dict[str, int] = {}
        self.refused = 0
        self._last_log = -10.0
        _quiet_uvicorn()

    def note_refusal(self, why: str) -> None:
        # A flood must not become a log flood: one line per 10 s with the count.
        self.refused += 1
        now = time.monotonic()
        if now - self._last_log >= 10:
            log.warning("API connections refused (%s); %d refused so far", why, self.refused)
            self._last_log = now


def edge_protocol(state: EdgeState) -> type[EdgeProtocol]:
    """The protocol class for one uvicorn server, bound to its shared ``state``."""
    return type("BoundEdgeProtocol", (EdgeProtocol,), {"edge": state})


class EdgeProtocol(H11Protocol):
    """uvicorn's h11 protocol with deadlines, connection caps and lingering close."""

    edge: ClassVar[EdgeState]

    _address = ""
    _counted = False
    _timer: asyncio.TimerHandle | None = None
    _phase: str | None = None
    _linger_left = 0
    _real: asyncio.Transport

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._real = transport
        super().connection_made(_LingeringTransport(transport, self))
        e, s = self.edge, self.edge.settings
        self._address = self.client[0] if self.client else ""
        if e.open >= e.max_connections:
            e.note_refusal(f"{e.open} open, the limit is {e.max_connections}")
            self._refuse(503, "too many connections to this server; retry shortly", "busy")
            return
        per_address = e.per_address.get(self._address, 0)
        cap = s.api_max_connections_per_address
        if cap > 0 and per_address >= cap:
            e.note_refusal(f"{per_address} open from one address, the limit is {cap}")
            self._refuse(
                429, f"more than {cap} connections from one address", "too_many_connections"
            )
            return
        e.open += 1
        e.per_address[self._address] = per_address + 1
        self._counted = True
        self._arm("headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._counted:
            self._counted = False
            e = self.edge
            e.open -= 1
            left = e.per_address.get(self._address, 1) - 1
            if left > 0:
                e.per_address[self._address] = left
            else:
                e.per_address.pop(self._address, None)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._phase == "linger":
            self._linger_left -= len(data)
            if self._linger_left < 0:
                self._real.close()
            return
        super().data_received(data)
        self._track()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._track()

    def send_400_response(self, msg: str) -> None:
        self._disarm()
        self.transport.write(
            raw_problem(400, "Bad Request", "malformed HTTP request", code="malformed_http")
        )
        self._close_lingering()

    def timeout_keep_alive_handler(self) -> None:
        self._disarm()
        super().timeout_keep_alive_handler()

    # Deadlines

    def _track(self) -> None:
        """Arm the deadline of the phase the request is in, after bytes or a response."""
        if self._phase == "linger":
            return
        theirs = self.conn.their_state
        if theirs is h11.SEND_BODY:
            if self._phase != "body":
                self._arm("body")
        elif theirs is h11.IDLE:
            # Bytes of a next request are buffered: its headers are on the clock. With
            # none, the connection is idle and uvicorn's keep-alive timer runs.
            if self.conn.trailing_data[0] and self._phase != "headers":
                self._arm("headers")
            elif not self.conn.trailing_data[0] and self._phase == "body":
                self._disarm()
        elif self._phase is not None:
            self._disarm()  # the request is whole: the application's turn

    def _arm(self, phase: str) -> None:
        self._disarm()
        s = self.edge.settings
        delay = s.api_header_timeout_s if phase == "headers" else s.api_body_timeout_s
        self._phase = phase
        self._timer = self.loop.call_later(delay, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._phase != "linger":
            self._phase = None

    def _expired(self) -> None:
        phase, self._timer = self._phase, None
        if self.transport.is_closing():
            return
        if phase == "linger":
            self._real.close()
            return
        if self.cycle is None or not self.cycle.response_started:
            s = self.edge.settings
            limit = s.api_header_timeout_s if phase == "headers" else s.api_body_timeout_s
            self.transport.write(
                raw_problem(
                    408,
                    "Request Timeout",
                    f"the request's {phase} did not arrive within {limit} s",
                    code="request_timeout",
                )
            )
        self._real.close()

    # Refusals and lingering close

    def _refuse(self, status: int, detail: str, code: str) -> None:
        title = "Too Many Requests" if status == 429 else "Service Unavailable"
        self.transport.write(
            raw_problem(status, title, detail, code=code, headers={"Retry-After": "1"})
        )
        self._real.close()

    def _close_lingering(self) -> None:
        """Half-close after the answer, then read and drop what the client still sends."""
        s = self.edge.settings
        if self._real.is_closing() or not self._real.can_write_eof():
            self._real.close()
            return
        self._real.write_eof()
        self._real.resume_reading()
        self._disarm()
        self._phase = "linger"
        self._linger_left = s.api_linger_max_bytes
        self._timer = self.loop.call_later(s.api_linger_s, self._expired)


class _LingeringTransport(asyncio.Transport):
    """The connection's transport as uvicorn sees it: ``close()`` lingers when the client
    is still sending the body of a request that was already answered (uvicorn closes
    after a ``Connection: close`` answer, and a plain close would reset the connection
    before the client reads the answer)."""

    def __init__(self, real: asyncio.Transport, protocol: EdgeProtocol) -> None:
        super().__init__()
        self._real = real
        self._protocol = protocol

    def close(self) -> None:
        p = self._protocol
        if not self._real.is_closing() and p.conn.their_state is h11.SEND_BODY:
            p._close_lingering()
        else:
            self._real.close()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._real.write(data)

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        self._real.writelines(list_of_data)

    def write_eof(self) -> None:
        self._real.write_eof()

    def can_write_eof(self) -> bool:
        return self._real.can_write_eof()

    def abort(self) -> None:
        self._real.abort()

    def is_closing(self) -> bool:
        return self._real.is_closing()

    def is_reading(self) -> bool:
        return self._real.is_reading()

    def pause_reading(self) -> None:
        if self._protocol._phase != "linger":
            self._real.pause_reading()

    def resume_reading(self) -> None:
        self._real.resume_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._real.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return self._real.get_write_buffer_size()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._real.set_write_buffer_limits(high, low)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._real.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._real.get_protocol()
