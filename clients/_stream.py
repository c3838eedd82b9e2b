"""One stream connection: connect, hello, welcome, frames; and why it ended.

Whether an ending is worth a retry is decided here, in one place: the server closes
with 1007/1008 (and 1002/1003/1009) only for this client's own frames, and a 4xx
handshake means the URL is wrong, so neither will get better by reconnecting; every
network failure and every other close code will.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from urllib.parse import urlsplit

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from amber_relay import __version__, frames

__all__ = [
    "FATAL_CLOSE_CODES",
    "RETRYABLE",
    "NoWelcome",
    "Refused",
    "ack",
    "check_url",
    "decode",
    "ending",
    "open_stream",
    "position",
]

log = logging.getLogger("amber_relay.client")

FATAL_CLOSE_CODES = frozenset({1002, 1003, 1007, 1008, 1009})
"""Close codes the server sends for this client's own frames: the same hello would be
refused again, so retrying cannot help. Every other ending is retried."""

MAX_FRAME_BYTES = 4 * 1024 * 1024  # an interrupt with every language and person in it
CLOSE_TIMEOUT_S = 2.0
PING_INTERVAL_S = 20.0  # a silent (half-open) connection is noticed within ~40 s


class Refused(Exception):
    """The server refused this client for good: ``code`` and ``reason``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


class NoWelcome(Exception):
    """The server spoke, but not a welcome first; retried like a network error."""


RETRYABLE = (ConnectionClosed, TimeoutError, OSError, WebSocketException, NoWelcome)
"""What :func:`ending` classifies; anything else is a bug and propagates."""


def position(lat: float | None, lon: float | None, region: str | None) -> frames.Move:
    """The position as a validated ``Move`` frame.

    The wire's own rules (ranges, the 5-digit region), checked before anything is
    sent: the server closes a socket that sends a bad position with 1008.

    Raises:
        ValueError: the position breaks them.
    """
    if region is not None and (lat is not None or lon is not None):
        raise ValueError("give lat and lon, or region, not both")
    try:
        return msgspec.convert({"lat": lat, "lon": lon, "region": region}, frames.Move)
    except msgspec.ValidationError as exc:
        raise ValueError(f"bad position: {exc}") from None


def ack(alert_id: str, version: int, event: str) -> frames.Ack:
    """An ``Ack`` frame checked by the wire's rules, so a bad one is never sent: the
    server would close the socket with 1008, and that refusal is fatal.

    Raises:
        ValueError: an empty or over-long id, a version below 1, an unknown event.
    """
    try:
        return msgspec.convert({"id": alert_id, "version": version, "event": event}, frames.Ack)
    except msgspec.ValidationError as exc:
        raise ValueError(f"bad ack: {exc}") from None


def check_url(url: str, schemes: tuple[str, ...], what: str) -> str:
    """``url`` if it has one of ``schemes`` and a host; else ValueError."""
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.netloc:
        raise ValueError(f"{what} must be a {' or '.join(schemes)} URL, not {url!r}")
    return url


async def open_stream(
    url: str, hello: Callable[[], frames.Hello], *, timeout_s: float
) -> tuple[ClientConnection, frames.Welcome]:
    """Connect, send ``hello()``, wait for the welcome (each step within ``timeout_s``).

    The socket is closed again if anything after the handshake fails or is cancelled.

    Raises:
        Any of :data:`RETRYABLE`, for :func:`ending` to classify.
    """
    ws = await connect(
        url,
        compression=None,
        open_timeout=timeout_s,
        close_timeout=CLOSE_TIMEOUT_S,
        ping_interval=PING_INTERVAL_S,
        ping_timeout=PING_INTERVAL_S,
        max_size=MAX_FRAME_BYTES,
        user_agent_header=f"amber-relay-client/{__version__}",
    )
    try:
        await ws.send(frames.encode(hello()), text=True)
        async with asyncio.timeout(timeout_s):
            while True:
                frame = decode(await ws.recv(decode=False))
                if isinstance(frame, frames.Welcome):
                    return ws, frame
                if frame is not None:
                    raise NoWelcome(f"expected welcome first, got {type(frame).__name__}")
    except BaseException:
        await ws.close()
        raise


def decode(raw: bytes) -> frames.ServerFrame | None:
    """A server frame, or None (logged) for one this version cannot read."""
    try:
        return frames.decode_server(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        # A newer server may send frames this version does not know: skip, keep going.
        log.warning("skipping a frame this client cannot read: %s", exc)
        return None


def ending(exc: BaseException) -> str:
    """Why a connection ended, for a retry.

    Raises:
        Refused: the ending was the server refusing this client for good.
    """
    if isinstance(exc, ConnectionClosed):
        code, reason = _close_of(exc)
        # A late hello is closed with 4408, not in the fatal set: the network's doing.
        if code in FATAL_CLOSE_CODES:
            raise Refused(code, reason or "closed by the server") from None
        if code == 1006:
            return f"{reason} (1006)"
        return f"closed by the server ({code} {reason})".replace(" )", ")")
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        if 400 <= status < 500 and status not in (408, 429):
            raise Refused(status, f"handshake refused: HTTP {status}") from None
        return f"handshake refused: HTTP {status}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


def _close_of(exc: ConnectionClosed) -> tuple[int, str]:
    """The close code and reason the server chose, or 1006 when it chose none."""
    rcvd, sent = exc.rcvd, exc.sent
    # When this side closed first (keepalive timeout, a frame over max_size) the
    # server merely echoes our code: that is not the server refusing us.
    if rcvd is not None and (sent is None or exc.rcvd_then_sent):
        return rcvd.code, rcvd.reason
    if sent is not None:
        return 1006, f"closed by this client: {sent.code} {sent.reason}".rstrip()
    return 1006, "connection lost"
