"""HMAC-SHA256 request signatures of the agency hook (pure; the replay cache is the API's).

``X-Amber-Signature: t=<unix seconds>,v1=<hex>`` where ``<hex>`` is
``HMAC_SHA256(secret, "<t>.<METHOD> <path>." + raw body)``. Method and path are signed
so a signature made for one request cannot be replayed against another.
"""

from __future__ import annotations

import hashlib
import hmac

from .errors import Unauthorized

__all__ = ["sign", "signature_header", "verify"]


def sign(secret: str, t: int, method: str, path: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"<t>.<METHOD> <path>." + body``."""
    msg = f"{t}.{method.upper()} {path}.".encode() + body
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def signature_header(secret: str, t: int, method: str, path: str, body: bytes) -> str:
    """The value of ``X-Amber-Signature`` for a request."""
    return f"t={t},v1={sign(secret, t, method, path, body)}"


def verify(
    header: str | None,
    secret: str,
    method: str,
    path: str,
    body: bytes,
    *,
    now: float,
    tolerance_s: int,
) -> str:
    """Check a signature header; return its hex digest (the replay-cache key).

    Raises:
        Unauthorized: missing or unparsable header, stale ``t``, or a digest mismatch,
            with a reason saying which.
    """
    if not header:
        raise Unauthorized("missing X-Amber-Signature header", code="missing_signature")
    parts: dict[str, str] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise Unauthorized(
                "X-Amber-Signature must look like t=<unix seconds>,v1=<hex>",
                code="bad_signature_header",
            )
        parts[key] = value
    t_raw, digest = parts.get("t"), parts.get("v1")
    if (
        t_raw is None
        or digest is None
        or not (t_raw.isascii() and t_raw.isdigit() and len(t_raw) <= 12)
    ):
        raise Unauthorized(
            "X-Amber-Signature must look like t=<unix seconds>,v1=<hex>",
            code="bad_signature_header",
        )
    t = int(t_raw)
    if abs(now - t) > tolerance_s:
        raise Unauthorized(
            f"signature time t={t} is {int(now - t)} s from the server's clock"
            f" (allowed: {tolerance_s} s); sign each request with the current time",
            code="stale_signature",
        )
    expected = sign(secret, t, method, path, body)
    if not hmac.compare_digest(expected.encode(), digest.lower().encode()):
        raise Unauthorized(
            f"signature does not match: expected HMAC-SHA256 of '{t}.{method.upper()}"
            f" {path}.' + body with this agency's secret",
            code="bad_signature",
        )
    return expected
