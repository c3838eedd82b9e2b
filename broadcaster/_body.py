"""Request bodies of the agency hook, read within a per-process memory budget.

A body is read only after its headers passed the pre-body checks (agency known,
signature header well formed and fresh). Every byte held is counted against
``settings.api_body_budget_bytes`` until the request is done with it, so however
many uploads are in flight, the process holds at most that much body memory: over
it the hook answers 503 with Retry-After instead of buffering.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect, Request

from amber_relay.errors import TooLarge

__all__ = ["Aborted", "BodyBudget", "Busy"]

log = logging.getLogger("amber_relay.hook")


class Busy(Exception):
    """The process holds its whole body budget: answer 503 and Retry-After."""


class Aborted(Exception):
    """The client went away mid-upload: nothing to answer (logged once, no traceback)."""


class BodyBudget:
    """Bodies in flight in one process, bounded by ``limit_bytes`` in all.

    Single event loop: the counter needs no lock.
    """

    def __init__(self, limit_bytes: int, max_body_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self.max_body_bytes = max_body_bytes
        self.in_flight_bytes = 0

    def _reserve(self, n: int) -> None:
        if self.in_flight_bytes + n > self.limit_bytes:
            raise Busy(
                f"{self.in_flight_bytes} bytes of request bodies are in flight"
                f" (limit {self.limit_bytes})"
            )
        self.in_flight_bytes += n

    @contextlib.asynccontextmanager
    async def read(self, request: Request) -> AsyncIterator[bytes]:
        """The whole body, counted against the budget until the block exits.

        Raises:
            TooLarge: declared or actual size over ``max_body_bytes`` (413).
            Busy: the budget cannot take this body now (503).
            Aborted: the client disconnected before the body was complete.
        """
        declared = request.headers.get("content-length")
        limit = self.max_body_bytes
        reserved = 0
        if declared is not None and declared.isascii() and declared.isdigit():
            if int(declared) > limit:
                raise TooLarge(f"body of {declared} bytes exceeds the {limit}-byte limit")
            # Reserve what is announced before reading a byte of it.
            self._reserve(int(declared))
            reserved = int(declared)
        try:
            chunks: list[bytes] = []
            size = 0
            try:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise TooLarge(f"body exceeds the {limit}-byte limit")
                    if size > reserved:
                        self._reserve(size - reserved)
                        reserved = size
                    chunks.append(chunk)
            except ClientDisconnect:
                client = request.client
                log.info(
                    "upload aborted by the client after %d bytes (%s %s from %s)",
                    size,
                    request.method,
                    request.url.path,
                    client.host if client else "?",
                )
                raise Aborted from None
            yield b"".join(chunks)
        finally:
            self.in_flight_bytes -= reserved
