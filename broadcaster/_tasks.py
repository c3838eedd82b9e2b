"""Supervised background tasks: a task that dies is logged and started again.

A serving process must never keep serving sockets while one of its loops (the feed,
the stats flush, the in-process worker) is silently dead. Each loop runs under
:func:`supervise`: when it raises (or returns, which a loop never should), the error
is logged with its traceback and the loop is started again after a full-jitter
exponential backoff; the backoff starts over once a run lasted ``healthy_s``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

__all__ = ["supervise"]

log = logging.getLogger("amber_relay.tasks")


async def supervise(
    name: str,
    run: Callable[[], Awaitable[None]],
    *,
    restarts: dict[str, int] | None = None,
    base_s: float = 0.1,
    max_s: float = 10.0,
    healthy_s: float = 60.0,
) -> None:
    """Run ``run()`` until cancelled, starting it again whenever it ends.

    ``restarts[name]`` counts the restarts (for /readyz and metrics). Cancellation
    cancels the running ``run()`` and ends this coroutine.
    """
    failures = 0
    while True:
        started = time.monotonic()
        try:
            await run()
            log.error("task %s returned; a background loop must not end: restarting", name)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("task %s died; restarting", name)
        if time.monotonic() - started >= healthy_s:
            failures = 0
        failures += 1
        if restarts is not None:
            restarts[name] = restarts.get(name, 0) + 1
        await asyncio.sleep(random.uniform(0, min(max_s, base_s * 2**failures)))
