"""RFC 9457 problem details: every error the API answers is ``application/problem+json``."""

from __future__ import annotations

import http
import logging
from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from amber_relay.errors import Rejected

from ._fields import field_of

__all__ = ["error_handlers", "from_rejected", "problem", "problem_body", "raw_problem"]

log = logging.getLogger("amber_relay.api")

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


def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):  # registered for HTTPException only
        return _internal_error(request, exc)
    status = exc.status_code
    title = http.HTTPStatus(status).phrase
    if status == 404:
        detail, code = "no such resource", "not_found"
    elif status == 405:
        detail, code = f"method {request.method} is not allowed here", "method_not_allowed"
    else:
        detail, code = title, title.lower().replace(" ", "_").replace("-", "_")
    return problem(status, title, detail, code=code, headers=exc.headers)


def _internal_error(request: Request, exc: Exception) -> Response:
    # The exception's text stays in the log (with its traceback): it may name hosts,
    # ports or paths.
    return problem(
        500, "Internal Server Error", "the server failed to answer", code="internal_error"
    )


def error_handlers() -> dict[Any, Any]:
    """Starlette exception handlers: router 404/405 and any 500 as problem+json."""
    return {HTTPException: _http_error, Exception: _internal_error}


def raw_problem(
    status: int, title: str, detail: str, *, code: str, headers: Mapping[str, str] = {}
) -> bytes:
    """A whole HTTP/1.1 problem+json response that closes the connection, as bytes.

    For answers the HTTP layer writes itself (timeouts, connection caps, bad requests).
    """
    body = _enc.encode(
        {
            "type": f"https://amber-relay.dev/problems/{code}",
            "title": title,
            "status": status,
            "detail": detail,
            "code": code,
        }
    )
    lines = [
        f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}",
        "content-type: application/problem+json",
        f"content-length: {len(body)}",
        "connection: close",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
