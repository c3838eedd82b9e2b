"""RFC 9457 problem details: every error the API answers is ``application/problem+json``."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
from starlette.responses import Response

from amber_relay.errors import Rejected

__all__ = ["problem", "from_rejected"]

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


def from_rejected(exc: Rejected) -> Response:
    headers = {"Retry-After": "1"} if exc.status == 503 else None
    return problem(exc.status, exc.title, exc.reason, code=exc.code, headers=headers)
