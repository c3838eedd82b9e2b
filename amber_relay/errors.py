"""Errors of amber-relay's core.

Hierarchy::

    AmberError                  code + reason, readable str()
    └── Rejected                input refused; carries the HTTP status it maps to
        ├── Malformed           400: not parseable (JSON, XML, UTF-8, nesting)
        ├── Unauthorized        401: missing, bad, stale or replayed signature
        ├── Forbidden           403: area outside the agency's jurisdiction
        ├── TooLarge            413: body over the size cap
        ├── UnsupportedType     415: content type not JSON nor CAP XML
        ├── Invalid             422: parses, but the content is wrong (geometry, times, fields)
        └── Busy                503: not checked in time (all checks busy); retry later

Storage failures are not ``Rejected``: the HTTP layer answers them with 503.
"""

from __future__ import annotations

__all__ = [
    "AmberError",
    "Busy",
    "Forbidden",
    "Invalid",
    "Malformed",
    "Rejected",
    "TooLarge",
    "Unauthorized",
    "UnsupportedType",
]


class AmberError(Exception):
    """Base of every amber-relay error: a short machine ``code`` and a human ``reason``."""

    code: str = "error"

    def __init__(self, reason: str, *, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.reason}"


class Rejected(AmberError):
    """Input refused; ``status`` is the HTTP status the API answers with."""

    status: int = 400
    title: str = "Bad Request"


class Malformed(Rejected):
    code = "malformed"
    status = 400
    title = "Malformed request"


class Unauthorized(Rejected):
    code = "unauthorized"
    status = 401
    title = "Signature check failed"


class Forbidden(Rejected):
    code = "outside_jurisdiction"
    status = 403
    title = "Outside jurisdiction"


class TooLarge(Rejected):
    code = "too_large"
    status = 413
    title = "Request body too large"


class UnsupportedType(Rejected):
    code = "unsupported_media_type"
    status = 415
    title = "Unsupported content type"


class Invalid(Rejected):
    code = "invalid"
    status = 422
    title = "Invalid alert"


class Busy(Rejected):
    code = "busy"
    status = 503
    title = "Busy"
