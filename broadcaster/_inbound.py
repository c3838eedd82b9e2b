"""Client frames in: reassembly, per-socket rates, decoding, and what each frame does.

The base class of :class:`broadcaster.stream.Connection`, which holds the socket.

The library's sans-I/O protocol yields each WebSocket frame; a text message may come
in fragments (RFC 6455 5.4), which are joined here. The library checks their order
and the size of the whole message (``max_frame_bytes``, 1009); the count of
fragments (``stream_max_fragments``) and the per-socket rates of move, ack and
ping/pong frames are checked here (1008 with a reason).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, cast

import msgspec
from websockets.frames import Frame, Opcode

from amber_relay import frames

from ._limits import Rate
from .index import Cell

if TYPE_CHECKING:
    from .stream import StreamServer

__all__ = ["Activity", "Inbound"]

log = logging.getLogger("amber_relay.stream")


class Activity:
    """What a socket that sends more than its hello needs, made on its first move, ack,
    ping/pong, fragment or close: most sockets only listen, and the fan-out walks every
    socket's object, so what they do not need stays out of it."""

    __slots__ = (
        "ack_due",
        "closing_at",
        "fragments",
        "last_move",
        "move_due",
        "pending_move",
        "ping_due",
    )

    def __init__(self) -> None:
        # Per-kind rate limits: when each kind's bucket is next empty (see Rate).
        self.move_due = self.ack_due = self.ping_due = 0.0
        # A fragmented text message being reassembled.
        self.fragments: list[bytes] | None = None
        self.last_move = 0.0
        self.pending_move: asyncio.TimerHandle | None = None
        self.closing_at = 0.0
        """When our close frame was sent (0: not yet)."""


class Inbound(asyncio.Protocol):
    """The inbound half of a stream connection; :class:`Connection` is the rest."""

    # What the frames change; the socket's own slots are Connection's. Every slot
    # costs each socket 8 bytes and the fan-out's walk over them: see Activity.
    __slots__ = ("act", "hello_done", "lat", "lon", "region")

    server: StreamServer
    transport: asyncio.Transport | None
    cell: Cell | None
    slot: int
    last_rx: float
    """When the current read arrived: "now" for the rates of every frame in it."""

    def __init__(self) -> None:
        self.lat: float | None = None
        self.lon: float | None = None
        self.region: str | None = None
        self.hello_done = False
        self.act: Activity | None = None

    def activity(self) -> Activity:
        """This socket's :class:`Activity`, made on first use."""
        act = self.act
        if act is None:
            act = self.act = Activity()
        return act

    def closing(self) -> bool:
        """Whether our close frame was sent."""
        act = self.act
        return act is not None and act.closing_at > 0

    def close(self, code: int, reason: str) -> None:
        raise NotImplementedError

    def send(self, data: bytes) -> bool:
        raise NotImplementedError

    def _flush(self) -> None:
        raise NotImplementedError

    def _frame(self, frame: Frame) -> None:
        if self.transport is None or self.closing():
            return  # closed while handling an earlier frame of the same read
        op = frame.opcode
        if op is Opcode.TEXT:
            if frame.fin:
                self._text(cast(bytes, frame.data))
            else:
                self.activity().fragments = [cast(bytes, frame.data)]
        elif op is Opcode.CONT:
            act = self.act
            parts = None if act is None else act.fragments
            if act is None or parts is None:
                return  # the rest of a binary message: already closing
            parts.append(cast(bytes, frame.data))
            if frame.fin:
                act.fragments = None
                self._text(b"".join(parts))
            elif len(parts) >= self.server.settings.stream_max_fragments:
                act.fragments = None
                limit = self.server.settings.stream_max_fragments
                self.close(1008, f"a message may come in at most {limit} fragments")
        elif op is Opcode.BINARY:
            self.close(1008, "binary frames are not accepted; send JSON text frames")
        elif op is Opcode.PING or op is Opcode.PONG:
            act = self.activity()
            due = self._rate(act.ping_due, self.server.ping_rate)
            if due > 0:
                act.ping_due = due

    def _rate(self, due: float, rate: Rate) -> float:
        """The bucket's next due time, or -1 after closing the socket (1008)."""
        due = rate.take(due, self.last_rx)
        if due < 0:
            self.server.closed_rate_limited += 1
            self.close(1008, rate.reason)
        return due

    def _text(self, data: bytes) -> None:
        try:
            msg = frames.decode_client(data)
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
            act = self.activity()
            due = self._rate(act.move_due, self.server.move_rate)
            if due > 0:
                act.move_due = due
                self._move(msg, act)
        else:
            act = self.activity()
            due = self._rate(act.ack_due, self.server.ack_rate)
            if due > 0:
                act.ack_due = due
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

    def _move(self, msg: frames.Move, act: Activity) -> None:
        # Coalesce: at most one move per interval is applied, and the latest position
        # always wins, so a burst of moves cannot make a client miss the area it ends in.
        loop = asyncio.get_running_loop()
        now = loop.time()
        wait = act.last_move + self.server.settings.move_min_interval_s - now
        if act.pending_move is not None:
            act.pending_move.cancel()
            act.pending_move = None
        if wait > 0:
            act.pending_move = loop.call_later(wait, self._apply_move, msg, act)
        else:
            self._apply_move(msg, act)

    def _apply_move(self, msg: frames.Move, act: Activity) -> None:
        act.pending_move = None
        if self.transport is None:
            return
        hub = self.server.hub
        hub.unfile(self)
        if not self._tag(msg.lat, msg.lon, msg.region):
            return
        act.last_move = asyncio.get_running_loop().time()
        self.server.moves += 1
        hub.moved(self)
        self._flush()
