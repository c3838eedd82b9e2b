"""HMAC-SHA256 request signatures of the agency hook (pure; the replay cache is the API's).

``X-Amber-Signature: t=<unix seconds>,v1=<hex>`` where ``<hex>`` is
``HMAC_SHA256(secret, "<t>.<METHOD> <path>." + raw body)``, where ``<path>`` includes
``?<query>`` when the request has one. Method and path are signed so a signature made for
one request cannot be replayed against another; the server accepts each signature once,
so two identical reads within one second need a distinguishing query (``?n=<random>``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import NamedTuple

from .errors import Unauthorized

__all__ = ["SignatureHeader", "check", "parse_header", "sign", "signature_header", "verify"]

_FORM = "X-Amber-Signature must look like t=<unix seconds>,v1=<64 hex digits>"
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


def sign(secret: str, t: int, method: str, path: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"<t>.<METHOD> <path>." + body``."""
    msg = f"{t}.{method.upper()} {path}.".encode() + body
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def signature_header(secret: str, t: int, method: str, path: str, body: bytes) -> str:
    """The value of ``X-Amber-Signature`` for a request."""
    return f"t={t},v1={sign(secret, t, method, path, body)}"


class SignatureHeader(NamedTuple):
    """A well-formed, fresh ``X-Amber-Signature``: its time and the digest it claims."""

    t: int
    digest: str


def parse_header(header: str | None, *, now: float, tolerance_s: int) -> SignatureHeader:
    """Check what can be checked before the body is read: form and freshness.

    The hook calls this first so a request that cannot be authentic is refused
    without buffering its body.

    Raises:
        Unauthorized: missing or unparsable header, or a ``t`` outside the tolerance.
    """
    if not header:
        raise Unauthorized("missing X-Amber-Signature header", code="missing_signature")
    parts: dict[str, str] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise Unauthorized(_FORM, code="bad_signature_header")
        parts[key] = value
    t_raw, digest = parts.get("t"), parts.get("v1")
    if (
        t_raw is None
        or digest is None
        or not (t_raw.isascii() and t_raw.isdigit() and len(t_raw) <= 12)
        or not _HEX64.fullmatch(digest)
    ):
        raise Unauthorized(_FORM, code="bad_signature_header")
    t = int(t_raw)
    if abs(now - t) > tolerance_s:
        raise Unauthorized(
            f"signature time t={t} is {int(now - t)} s from the server's clock"
            f" (allowed: {tolerance_s} s); sign each request with the current time",
            code="stale_signature",
        )
    return SignatureHeader(t, digest.lower())


def check(parsed: SignatureHeader, secret: str, method: str, path: str, body: bytes) -> str:
    """Check a parsed header's digest against the request; return it (the replay key).

    Raises:
        Unauthorized: the digest does not match (``bad_signature``).
    """
    expected = sign(secret, parsed.t, method, path, body)
    if not hmac.compare_digest(expected.encode(), parsed.digest.encode()):
        raise Unauthorized(
            f"signature does not match: expected HMAC-SHA256 of '{parsed.t}.{method.upper()}"
            f" {path}.' + body with this agency's secret",
            code="bad_signature",
        )
    return expected


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
    parsed = parse_header(header, now=now, tolerance_s=tolerance_s)
    return check(parsed, secret, method, path, body)
