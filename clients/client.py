"""The async client library: what an app wires in to put AMBER Alerts on screen.

Example::

    async with AlertClient("wss://relay.example/v1/stream", lat=29.42, lon=-98.49) as client:
        async for event in client:
            if isinstance(event, frames.Interrupt):
                show(event.alert)                      # full screen
                await client.ack(event.alert.id, event.alert.version, "shown")
            else:                                      # frames.Clear
                take_down(event.id)

See ``docs/client.md`` for the delivery guarantee, the backoff and the poll fallback.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Self

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from amber_relay import frames
from amber_relay.model import AlertContent, Info

from . import _seen, _stream
from ._backoff import Backoff
from ._poll import Poller
from ._stream import FATAL_CLOSE_CODES

__all__ = [
    "FATAL_CLOSE_CODES",
    "AckEvent",
    "AlertClient",
    "ClientError",
    "ConnectionState",
    "Event",
    "pick_info",
]

log = logging.getLogger("amber_relay.client")

Event = frames.Interrupt | frames.Clear
"""What iterating an :class:`AlertClient` yields."""
AckEvent = Literal["shown", "dismissed", "call", "more"]
StateName = Literal["connecting", "connected", "disconnected", "polling", "closed"]

_HELLO_SEEN_BUDGET_BYTES = 12_000  # under any server frame limit (16 KiB at first)
_POLL_SEEN_BUDGET_BYTES = 6_000  # keeps the poll URL under common 8 KiB limits


class ClientError(Exception):
    """The client library's error: a ``code`` and a ``reason``; retrying will not help.

    ``code`` is the WebSocket close code the server sent (1008 policy violation, for
    example an unknown region; 1007 invalid data), or the HTTP status of a refused
    handshake (404: no stream at that URL).
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.code}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ConnectionState:
    """A change of the connection, handed to ``on_state`` (status lines, logs, metrics).

    ``state`` is ``connecting``, ``connected`` (``detail`` names the node and the
    number of alerts that follow), ``disconnected`` (``detail`` says why,
    ``retry_in_s`` when the next attempt starts), ``polling`` (the HTTP fallback
    started) or ``closed`` (the app closed the client, or a :class:`ClientError`).
    ``failures`` counts consecutive attempts that got no welcome.
    """

    state: StateName
    detail: str = ""
    retry_in_s: float | None = None
    failures: int = 0


def pick_info(alert: AlertContent, language: str | None) -> Info:
    """The alert's text in ``language`` (BCP 47, ``"es"`` or ``"es-US"``), else its primary.

    An exact tag wins, then the same primary subtag (``es`` matches ``es-MX``).
    """
    if not alert.infos:
        return Info()
    if language:
        wanted = language.lower()
        for info in alert.infos:
            if info.language.lower() == wanted:
                return info
        primary = wanted.split("-", 1)[0]
        for info in alert.infos:
            if info.language.lower().split("-", 1)[0] == primary:
                return info
    return alert.infos[0]


class AlertClient:
    """A device's connection to the alert stream: reconnecting, deduplicating, polling.

    Use it as an async context manager and iterate it. Iteration yields
    ``frames.Interrupt`` for each (alert id, version) not shown before (a newer version
    of a shown alert is yielded again) and ``frames.Clear`` for alerts it yielded
    (cancelled, expired, or no longer covering this place). An interrupt counts as
    shown once it is yielded.

    The connection runs in a background task from ``__aenter__`` to ``__aexit__``:
    it connects, says hello (position and the seen set), and on any drop reconnects
    forever with full-jitter exponential backoff (a draw from
    ``[0, min(backoff_max_s, backoff_base_s * 2**attempt)]``, reset after a connection
    that got its welcome). After ``poll_after_failures`` consecutive attempts without a
    welcome, and while it keeps trying the socket, it polls
    ``{api_url}/v1/alerts/active`` every ``poll_interval_s`` (with ``If-None-Match``).

    Cancellation and closing: leaving the ``async with`` block (normally, by an
    exception, or because the task running it was cancelled) stops the background
    task, closes the socket with a close frame (1000, waiting at most 2 s for the
    server's answer), stops polling and writes the seen file. Breaking out of the
    ``async for`` alone leaves the connection open; iterating again continues. After
    closing, iteration ends (``StopAsyncIteration``).

    Timeouts: ``connect_timeout_s`` bounds the opening handshake, then separately the
    wait for the welcome, and each poll request. A silent connection is detected by
    keepalive pings within about 40 s and reconnected.

    Args:
        stream_url: ``ws://`` or ``wss://`` URL of ``/v1/stream``.
        lat: latitude (WGS 84), with ``lon``; or give ``region``.
        lon: longitude (WGS 84).
        region: 5-digit county FIPS code instead of lat/lon.
        api_url: base URL of the HTTP API for the poll fallback; None disables it.
        seen_path: JSON file keeping the seen set across runs (written atomically);
            None keeps it in memory only. A missing or corrupt file starts empty.
        backoff_base_s: ceiling of the first reconnect delay.
        backoff_max_s: largest reconnect delay.
        connect_timeout_s: bound of the handshake, of the welcome wait, of a poll.
        poll_after_failures: consecutive failed attempts before polling starts.
        poll_interval_s: seconds between polls.
        language: preferred language for :meth:`info` (BCP 47); None means the
            alert's primary language.
        on_state: called with a :class:`ConnectionState` on every connection change;
            it must not block (exceptions are logged and ignored).
        rng: randomness of the backoff (a seeded ``random.Random`` for tests).

    Raises:
        ValueError: a bad URL, position or setting (raised here, before connecting).
    """

    def __init__(
        self,
        stream_url: str,
        *,
        lat: float | None = None,
        lon: float | None = None,
        region: str | None = None,
        api_url: str | None = None,
        seen_path: str | os.PathLike[str] | None = None,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        connect_timeout_s: float = 10.0,
        poll_after_failures: int = 3,
        poll_interval_s: float = 30.0,
        language: str | None = None,
        on_state: Callable[[ConnectionState], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._url = _stream.check_url(stream_url, ("ws", "wss"), "stream_url")
        self._position = _stream.position(lat, lon, region)
        if not connect_timeout_s > 0 or not poll_interval_s > 0 or poll_after_failures < 1:
            raise ValueError("timeouts and intervals must be > 0, poll_after_failures >= 1")
        self._backoff = Backoff(backoff_base_s, backoff_max_s, rng)
        self._seen_path = seen_path
        self._connect_timeout_s = connect_timeout_s
        self._poll_after_failures = poll_after_failures
        self.language = language
        self._on_state = on_state
        self._seen = _seen.SeenSet()
        self._saver: _seen.Saver | None = None
        self._poller: Poller | None = None
        if api_url is not None:
            self._poller = Poller(
                _stream.check_url(api_url, ("http", "https"), "api_url"),
                interval_s=poll_interval_s,
                timeout_s=connect_timeout_s,
                where=lambda: self._position,
                seen=self._poll_seen,
                deliver=self._put,
            )
        self._queue: asyncio.Queue[Event | BaseException | None] | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._live: ClientConnection | None = None
        self.welcome: frames.Welcome | None = None
        """The last welcome received (``active`` counts the alerts that followed it)."""

    # -- lifecycle ---------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._queue is not None:
            raise RuntimeError("an AlertClient can be entered once")
        if self._seen_path is not None:
            self._seen = await asyncio.to_thread(_seen.load, self._seen_path)
            self._saver = _seen.Saver(self._seen_path, self._seen)
        self._queue = asyncio.Queue()
        self._run_task = asyncio.create_task(self._run(), name="amber-relay client")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the socket cleanly, stop polling, save the seen set. Idempotent."""
        task, self._run_task = self._run_task, None
        if task is not None and not task.done():
            task.cancel()
            # The run task closes its socket (close frame, bounded wait) as it unwinds.
            await asyncio.gather(task, return_exceptions=True)
            self._put(None)
            self._emit("closed", "closed by the app")
        if self._poller is not None:
            await self._poller.aclose()
        if self._saver is not None:
            await self._saver.flush()

    @property
    def connected(self) -> bool:
        """True while a socket is open and welcomed."""
        return self._live is not None

    # -- the app's side ----------------------------------------------------------

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        """The next event to act on; waits as long as it takes (no timeout).

        Raises:
            ClientError: the server refused this client for good; pending events were
                yielded first.
            StopAsyncIteration: the client was closed.
        """
        queue = self._queue
        if queue is None:
            raise RuntimeError("iterate inside `async with AlertClient(...) as client`")
        while True:
            # No await between taking an item and returning it: a cancelled
            # iteration never loses an alert it took off the queue.
            item = await queue.get()
            if item is None or isinstance(item, BaseException):
                queue.put_nowait(item)  # every later call ends the same way
                if item is None:
                    raise StopAsyncIteration
                raise item
            if isinstance(item, frames.Interrupt):
                if self._seen.show(item.alert.id, item.alert.version):
                    self._persisted()
                    return item
            elif self._seen.clear(item.id):
                self._persisted()
                return item

    async def move(
        self, *, lat: float | None = None, lon: float | None = None, region: str | None = None
    ) -> None:
        """Change the device's position (lat and lon, or region).

        Sent on the live socket if there is one; in any case remembered for the next
        hello and poll. The server applies at most one move per second (the latest
        wins) and then sends the alerts covering the new place.

        Raises:
            ValueError: a bad position (nothing is sent).
        """
        self._position = frame = _stream.position(lat, lon, region)
        if self._poller is not None:
            self._poller.wake()
        await self._send(frame)

    async def ack(self, alert_id: str, version: int, event: AckEvent) -> bool:
        """Report what the user did with an alert: ``shown``, ``dismissed``, ``call``, ``more``.

        The library never sends ``shown`` by itself: only the app knows when the alert
        is on screen. Acks are best-effort delivery figures: sent if a socket is open,
        dropped otherwise (never queued nor retried). Returns whether it was sent.

        Raises:
            ValueError: an unknown ``event``, a version below 1, an empty id (checked
                here because the server would refuse the socket for good).
        """
        return await self._send(_stream.ack(alert_id, version, event))

    def info(self, alert: AlertContent) -> Info:
        """The alert's text in the client's ``language`` (see :func:`pick_info`)."""
        return pick_info(alert, self.language)

    # -- connection --------------------------------------------------------------

    async def _send(self, frame: frames.ClientFrame) -> bool:
        ws = self._live
        if ws is None:
            return False
        try:
            await ws.send(frames.encode(frame), text=True)
        except ConnectionClosed:
            return False  # the run task sees the same close and reconnects
        return True

    async def _run(self) -> None:
        failures = 0
        try:
            while True:
                self._emit("connecting", self._url, failures=failures)
                welcomed, why = await self._session()
                if welcomed:
                    failures = 0
                else:
                    failures += 1
                    if failures >= self._poll_after_failures:
                        self._start_poll()
                delay = self._backoff.next_delay()
                self._emit("disconnected", why, retry_in_s=delay, failures=failures)
                await asyncio.sleep(delay)
        except ClientError as exc:
            self._stop_poll()
            self._emit("closed", str(exc), failures=failures)
            self._put(exc)
        except Exception as exc:  # a bug here must reach the app, not vanish in a task
            log.exception("client task failed")
            self._put(exc)

    async def _session(self) -> tuple[bool, str]:
        """One connection, until it ends: (got a welcome, why it ended).

        Raises:
            ClientError: the server refused this client for good.
        """
        ws: ClientConnection | None = None
        said = self._position

        def hello() -> frames.Hello:
            # Built once the handshake is done, not before: an alert the poll yielded
            # while the socket was connecting is then in the seen set it sends.
            nonlocal said
            said = self._position
            seen = self._seen.for_wire(_HELLO_SEEN_BUDGET_BYTES)
            return frames.Hello(lat=said.lat, lon=said.lon, region=said.region, seen=seen)

        try:
            ws, welcome = await _stream.open_stream(
                self._url, hello, timeout_s=self._connect_timeout_s
            )
            self._welcomed(ws, welcome)
            if self._position is not said:  # moved while waiting for the welcome
                await ws.send(frames.encode(self._position), text=True)
            while True:
                frame = _stream.decode(await ws.recv(decode=False))
                if frame is not None and not isinstance(frame, frames.Welcome):
                    self._put(frame)
        except _stream.RETRYABLE as exc:
            try:
                return ws is not None, _stream.ending(exc)
            except _stream.Refused as refused:
                raise ClientError(refused.code, refused.reason) from None
        finally:
            self._live = None
            if ws is not None:
                await ws.close()

    def _welcomed(self, ws: ClientConnection, welcome: frames.Welcome) -> None:
        self._live = ws
        self.welcome = welcome
        self._backoff.reset()
        # The socket's hello answers everything a poll would, and a poll answer that
        # lands after the socket's frames would be stale: stop polling right here.
        self._stop_poll()
        self._emit("connected", f"node {welcome.node}, {welcome.active} active")

    # -- helpers -----------------------------------------------------------------

    def _start_poll(self) -> None:
        if self._poller is not None and not self._poller.running:
            self._poller.start()
            self._emit("polling", f"{self._poller.url} every {self._poller.interval_s:g} s")

    def _stop_poll(self) -> None:
        if self._poller is not None:
            self._poller.stop()

    def _poll_seen(self) -> str:
        # The poll's id:version,... syntax cannot carry an id with a comma: such an
        # alert is sent again and dropped here.
        seen = self._seen.for_wire(_POLL_SEEN_BUDGET_BYTES, forbidden=",")
        return ",".join(f"{alert_id}:{version}" for alert_id, version in seen)

    def _put(self, item: Event | BaseException | None) -> None:
        if self._queue is not None:
            self._queue.put_nowait(item)

    def _persisted(self) -> None:
        if self._saver is not None:
            self._saver.request()

    def _emit(
        self,
        state: StateName,
        detail: str = "",
        *,
        retry_in_s: float | None = None,
        failures: int = 0,
    ) -> None:
        log.debug("client %s: %s", state, detail)
        if self._on_state is None:
            return
        try:
            self._on_state(ConnectionState(state, detail, retry_in_s, failures))
        except Exception:
            log.exception("on_state callback failed")
