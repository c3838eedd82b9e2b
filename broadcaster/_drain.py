"""Graceful drain: close a stopping replica's sockets in batches, not all at once.

Every socket closed sends its client to another replica; closing them all in the
same millisecond makes the survivors take a whole replica's handshakes and hellos
in one second. The drain closes them with 1012 (service restart: retry) in batches
every ``tick_s``, so the last one closes ``drain_s`` after the first.
"""

from __future__ import annotations

import asyncio
import math
import random

from .stream import StreamServer

__all__ = ["RESTART", "drain"]

RESTART = 1012
"""WebSocket close code "service restart": the client reconnects (to another replica)."""


async def drain(
    stream: StreamServer, drain_s: float, *, tick_s: float = 0.1, until: asyncio.Event | None = None
) -> int:
    """Close every socket of ``stream`` with 1012, spread over ``drain_s`` seconds.

    The listener must already be closed (no new sockets arrive). A few sockets are
    closed at once (one per tick at most); many are spread evenly. When ``until`` is
    set meanwhile (a second signal), the rest are closed at once. Returns how many
    sockets were closed. Cancellation stops the drain where it is.
    """
    pending = list(stream.connections)
    random.shuffle(pending)  # no client is always last: fair across restarts
    ticks = max(1, math.ceil(drain_s / tick_s))
    batch = max(1, math.ceil(len(pending) / ticks))
    closed = 0
    while pending:
        if until is not None and until.is_set():
            batch = len(pending)
        now, pending = pending[:batch], pending[batch:]
        for conn in now:
            conn.close(RESTART, "server restarting: reconnect")
            closed += 1
        if pending:
            await asyncio.sleep(tick_s)
    # Sockets that arrived between the listener's close and the snapshot above.
    stream.close_all(RESTART, "server restarting: reconnect")
    return closed
