"""Tests of amber_relay.signing: HMAC-SHA256 request signatures of the agency hook."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from amber_relay.errors import Unauthorized
from amber_relay.signing import sign, signature_header, verify

SECRET = "s3cret-0123456789abcdef"
NOW = 1763770000
TOLERANCE_S = 300
BODY = b'{"identifier": "TX-2025-0042"}'
PATH = "/v1/alerts"


def check(
    header: str | None,
    *,
    secret: str = SECRET,
    method: str = "POST",
    path: str = PATH,
    body: bytes = BODY,
    now: float = NOW,
) -> str:
    return verify(header, secret, method, path, body, now=now, tolerance_s=TOLERANCE_S)


def test_sign_is_hmac_sha256_of_t_method_path_and_body() -> None:
    """The digest is HMAC-SHA256(secret, "<t>.<METHOD> <path>." + body), as the contract says."""
    msg = b"1763770000.POST /v1/alerts." + BODY
    want = hmac.new(SECRET.encode(), msg, hashlib.sha256).hexdigest()
    assert sign(SECRET, NOW, "post", PATH, BODY) == want
    assert signature_header(SECRET, NOW, "POST", PATH, BODY) == f"t={NOW},v1={want}"


def test_verify_round_trip_returns_digest() -> None:
    """A header made by signature_header verifies and returns its digest (the replay key)."""
    header = signature_header(SECRET, NOW, "POST", PATH, BODY)
    assert check(header) == sign(SECRET, NOW, "POST", PATH, BODY)


def test_verify_round_trip_delete_with_empty_body_and_spaces() -> None:
    """A DELETE with an empty body verifies; spaces after the comma and upper-case hex are fine."""
    digest = sign(SECRET, NOW, "DELETE", "/v1/alerts/TX-1", b"")
    check(f"t={NOW}, v1={digest.upper()}", method="DELETE", path="/v1/alerts/TX-1", body=b"")


@pytest.mark.parametrize("header", [None, ""])
def test_verify_missing_header_is_unauthorized(header: str | None) -> None:
    """No header is Unauthorized with code missing_signature (401)."""
    with pytest.raises(Unauthorized) as e:
        check(header)
    assert e.value.code == "missing_signature"
    assert e.value.status == 401


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        "t=1763770000",
        "v1=abcd",
        f"t=abc,v1={'0' * 64}",
        f"t=-5,v1={'0' * 64}",
        f"t=1763770000;v1={'0' * 64}",
        f"t=1763770000,,v1={'0' * 64}",
        "sha256=abcdef",
    ],
)
def test_verify_garbage_header_is_unauthorized(header: str) -> None:
    """A header not shaped t=<unix seconds>,v1=<hex> is Unauthorized (bad_signature_header)."""
    with pytest.raises(Unauthorized) as e:
        check(header)
    assert e.value.code == "bad_signature_header"


@pytest.mark.parametrize("skew_s", [-301, 301, -100_000, 100_000])
def test_verify_stale_t_is_unauthorized_both_directions(skew_s: int) -> None:
    """A t more than tolerance_s behind or ahead of now is Unauthorized (stale_signature)."""
    t = NOW + skew_s
    with pytest.raises(Unauthorized) as e:
        check(signature_header(SECRET, t, "POST", PATH, BODY))
    assert e.value.code == "stale_signature"
    assert f"t={t}" in e.value.reason


@pytest.mark.parametrize("skew_s", [-300, 300])
def test_verify_t_at_the_tolerance_is_accepted(skew_s: int) -> None:
    """A t exactly tolerance_s away still verifies (the bound is inclusive)."""
    check(signature_header(SECRET, NOW + skew_s, "POST", PATH, BODY))


def test_verify_wrong_secret_is_unauthorized() -> None:
    """A signature made with another secret is Unauthorized (bad_signature)."""
    with pytest.raises(Unauthorized) as e:
        check(signature_header("another-secret-0123456789", NOW, "POST", PATH, BODY))
    assert e.value.code == "bad_signature"


def test_verify_body_changed_is_unauthorized() -> None:
    """One byte of the body changed after signing is Unauthorized (bad_signature)."""
    header = signature_header(SECRET, NOW, "POST", PATH, BODY)
    with pytest.raises(Unauthorized) as e:
        check(header, body=BODY.replace(b"42", b"43"))
    assert e.value.code == "bad_signature"


@pytest.mark.parametrize(
    ("method", "path"),
    [("DELETE", PATH), ("GET", PATH), ("POST", "/v1/alerts/TX-2025-0042"), ("POST", "/v1/alert")],
)
def test_verify_method_or_path_changed_is_unauthorized(method: str, path: str) -> None:
    """A signature for POST /v1/alerts replayed on another method or path is Unauthorized."""
    header = signature_header(SECRET, NOW, "POST", PATH, BODY)
    with pytest.raises(Unauthorized) as e:
        check(header, method=method, path=path)
    assert e.value.code == "bad_signature"


def test_verify_t_changed_is_unauthorized() -> None:
    """A digest moved to another (fresh) t is Unauthorized: t is signed too."""
    digest = sign(SECRET, NOW, "POST", PATH, BODY)
    with pytest.raises(Unauthorized) as e:
        check(f"t={NOW + 1},v1={digest}")
    assert e.value.code == "bad_signature"


@pytest.mark.parametrize(
    "header",
    ["t=\u00b2,v1=ab", "t=" + "9" * 5000 + ",v1=ab", f"t={NOW},v1=\u00e9"],
    ids=["superscript-t", "huge-t", "non-ascii-v1"],
)
def test_verify_hostile_header_is_unauthorized_not_a_crash(header: str) -> None:
    """A hostile header (Unicode digits, 5,000-digit t, non-ASCII digest) is Unauthorized."""
    with pytest.raises(Unauthorized):
        check(header)
