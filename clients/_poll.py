"""The HTTP poll fallback: ``GET /v1/alerts/active`` while the stream is unreachable.

It asks the same question as a hello (position plus the seen set) and hands the
answer over as the stream's own frame types, so the client dedupes both sources with
one rule.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import httpx
import msgspec

from amber_relay import frames
from amber_relay.model import AlertContent

__all__ = ["Poller"]

log = logging.getLogger("amber_relay.client")


class _Answer(msgspec.Struct):
    alerts: list[AlertContent] = []
    clears: list[frames.Clear] = []


_decoder = msgspec.json.Decoder(_Answer)


class Poller:
    """Polls ``{api_url}/v1/alerts/active`` every ``interval_s`` until stopped.

    ``where`` gives the current position, ``seen`` the ``id:version,...`` value (or
    ""), ``deliver`` takes each frame of an answer. A response's ETag is sent back as
    ``If-None-Match``; a 304 delivers nothing.
    """

    def __init__(
        self,
        api_url: str,
        *,
        interval_s: float,
        timeout_s: float,
        where: Callable[[], frames.Move],
        seen: Callable[[], str],
        deliver: Callable[[frames.Interrupt | frames.Clear], None],
    ) -> None:
        self.url = f"{api_url.rstrip('/')}/v1/alerts/active"
        self.interval_s = interval_s
        self._timeout_s = timeout_s
        self._where = where
        self._seen = seen
        self._deliver = deliver
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start polling (no-op if running)."""
        if not self.running:
            self._task = asyncio.create_task(self._loop(), name="amber-relay poll")

    def stop(self) -> None:
        """Stop at once: an answer still in flight is dropped, never delivered late."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def wake(self) -> None:
        """Poll now rather than at the next interval (the position changed)."""
        self._wake.set()

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        etag: str | None = None
        async with httpx.AsyncClient(timeout=self._timeout_s) as http:
            while True:
                self._wake.clear()
                try:
                    etag = await self.poll_once(http, etag)
                except (httpx.HTTPError, msgspec.DecodeError, msgspec.ValidationError) as exc:
                    log.warning("poll %s failed: %r", self.url, exc)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.interval_s):
                        await self._wake.wait()

    async def poll_once(self, http: httpx.AsyncClient, etag: str | None) -> str | None:
        """One request; delivers the answer and returns the ETag to send next time.

        Raises:
            httpx.HTTPError: the request failed.
            msgspec.DecodeError, msgspec.ValidationError: the answer is not the API's.
        """
        where = self._where()
        params: dict[str, str] = (
            {"region": where.region}
            if where.region is not None
            else {"lat": repr(where.lat), "lon": repr(where.lon)}
        )
        seen = self._seen()
        if seen:
            params["seen"] = seen
        headers = {"If-None-Match": etag} if etag else {}
        r = await http.get(self.url, params=params, headers=headers)
        if r.status_code == 304:
            return etag
        if r.status_code != 200:
            log.warning("poll %s: HTTP %d %s", self.url, r.status_code, r.text[:300])
            return None
        answer = _decoder.decode(r.content)
        for content in answer.alerts:
            self._deliver(frames.Interrupt(alert=content))
        for clear in answer.clears:
            self._deliver(clear)
        new_etag: str | None = r.headers.get("etag")
        return new_etag
