"""CPU-heavy pure work (alert validation) run off the event loop, bounded.

The loop that runs this also serves the stream's sockets: validation runs in a
worker thread, at most ``slots`` at once per process (so memory held by checks in
flight is bounded too), and each caller waits at most ``timeout_s``, for a slot and
the work together. The work itself is bounded by construction (``amber_relay._bounded``
and the hook's limits), so a thread whose caller timed out still ends soon; its slot
is freed only then, so abandoned work cannot pile up.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from amber_relay.errors import Busy

__all__ = ["Offload"]

T = TypeVar("T")


class Offload:
    """Runs functions in threads: at most ``slots`` at once, each awaited ``timeout_s``."""

    def __init__(self, slots: int, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._slots = asyncio.Semaphore(slots)

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in a thread.

        Raises:
            Busy: no result within ``timeout_s`` (waiting for a slot included); the
                thread, if started, runs to its end and then frees its slot.
            Whatever ``fn`` raises.
        Cancellation: the caller stops waiting; the thread still runs to its end.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        try:
            async with asyncio.timeout_at(deadline):
                await self._slots.acquire()
        except TimeoutError:
            raise Busy(
                f"alert checks are all busy; none freed within {self.timeout_s:g} s",
                code="ingest_busy",
            ) from None
        future = loop.run_in_executor(None, functools.partial(fn, *args, **kwargs))
        future.add_done_callback(self._done)
        try:
            async with asyncio.timeout_at(deadline):
                return await asyncio.shield(future)
        except TimeoutError:
            raise Busy(
                f"checking the alert took more than {self.timeout_s:g} s", code="ingest_busy"
            ) from None

    def _done(self, future: asyncio.Future[Any]) -> None:
        self._slots.release()
        if not future.cancelled():
            future.exception()  # retrieved: a caller that timed out no longer awaits it
