"""What the HTTP handlers share: the context built once per process, JSON, 503."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import msgspec
from starlette.responses import Response

from amber_relay import metrics
from amber_relay.agencies import Agency
from amber_relay.geodata import GeoData
from amber_relay.settings import Settings
from amber_relay.store import NotReplicated, Store, Submission

from ._health import Health
from ._problem import problem
from ._validator import ValidatorPool
from .hub import Hub

__all__ = ["ApiContext", "json_response", "unavailable"]

log = logging.getLogger("amber_relay.api")

_enc = msgspec.json.Encoder()


@dataclass(frozen=True)
class ApiContext:
    """What the API needs, built once by the serving process."""

    settings: Settings
    store: Store
    agencies: dict[str, Agency]
    geodata: GeoData
    hub: Hub
    enqueue: Callable[[str, int, Submission, bool], Awaitable[None]]
    """Queue the apply job of (alert id, version, submission, fresh); raises on failure.

    ``fresh`` is false for an idempotent replay (nothing new to apply)."""
    clock: Callable[[], float]
    checks: ValidatorPool
    """The child processes that parse and check alerts (hook and preview)."""
    not_ready: Callable[[], str | None] = lambda: None
    """A short reason this process should get no traffic now (``/readyz``), or None."""
    health: Health = field(default_factory=Health)
    """The process's health (feed state, draining), read by ``/readyz``."""


def json_response(
    data: object, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        _enc.encode(data), status_code=status, media_type="application/json", headers=headers
    )


def unavailable(exc: BaseException) -> Response:
    """503: Redis could not take the write, so nothing was accepted."""
    log.warning("store unavailable: %r", exc)
    metrics.REDIS_ERRORS.labels("hook").inc()
    if isinstance(exc, NotReplicated):
        return problem(
            503,
            "Alert not replicated",
            "the alert was not acknowledged by enough Redis replicas in time, so it was not"
            " accepted; retry with a fresh signature (resubmitting the same alert is safe:"
            " it is idempotent)",
            code="store_not_replicated",
            headers={"Retry-After": "1"},
        )
    return problem(
        503,
        "Alert store unavailable",
        "the alert could not be stored durably, so it was not accepted; retry with a"
        " fresh signature (resubmitting the same alert is safe: it is idempotent)",
        code="store_unavailable",
        headers={"Retry-After": "5"},
    )
