"""RFC 9457 problem details: every error the API answers is ``application/problem+json``."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
from starlette.responses import Response

from amber_relay.errors import Rejected

from ._fields import field_of

__all__ = ["from_rejected", "problem", "problem_body"]

_enc = msgspec.json.Encoder()


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    code: str,
    headers: Mapping[str, str] | None = None,
    **extra: object,
) -> Response:
    """A problem+json response; ``code`` is a stable machine-readable token."""
    body = {
        "type": f"https://amber-relay.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    return Response(
        _enc.encode(body),
        status_code=status,
        media_type="application/problem+json",
        headers=dict(headers or {}),
    )


def problem_body(exc: Rejected) -> dict[str, object]:
    """The problem+json body of a refusal; ``field`` names the input it is about, if any."""
    body: dict[str, object] = {
        "type": f"https://amber-relay.dev/problems/{exc.code}",
        "title": exc.title,
        "status": exc.status,
        "detail": exc.reason,
        "code": exc.code,
    }
    field = field_of(exc.reason)
    if field is not None:
        body["field"] = field
    return body


def from_rejected(exc: Rejected) -> Response:
    # A 503 refusal (busy, store down) is always worth retrying: say when.
    headers = {"Retry-After": "1"} if exc.status == 503 else None
    return Response(
        _enc.encode(problem_body(exc)),
        status_code=exc.status,
        media_type="application/problem+json",
        headers=headers,
    )
