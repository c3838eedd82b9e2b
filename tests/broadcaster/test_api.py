"""The agency hook refuses bad input precisely (problem+json) and stores nothing for it."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from amber_relay.signing import signature_header
from tests.conftest import System
from tests.support import Agency, alert_doc, signed, square

pytestmark = pytest.mark.asyncio

SA = (29.42, -98.49)


async def stored_keys(system: System) -> list[bytes]:
    """The deployment's alert keys (submissions, versions, active set, events)."""
    assert system.settings.redis_url is not None
    redis = Redis.from_url(system.settings.redis_url)
    try:
        keys = [k async for k in redis.scan_iter(match=system.settings.redis_prefix + "*")]
    finally:
        await redis.aclose()
    kinds = (b":sub:", b":alert:", b":active", b":events", b":expiries", b":media:")
    return [k for k in keys if any(kind in k for kind in kinds)]


def assert_problem(r: httpx.Response, status: int, code: str, *fragments: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status
    assert body["code"] == code, body
    for fragment in fragments:
        assert fragment in body["detail"], body


async def test_missing_signature_is_401_and_nothing_stored(system: System) -> None:
    """No signature headers: 401 problem+json, and no key is written."""
    body = json.dumps(alert_doc("TX-1", polygon=square(*SA, 0.1))).encode()
    r = await system.http.post(
        "/v1/alerts", content=body, headers={"Content-Type": "application/json"}
    )
    assert_problem(r, 401, "missing_agency")
    r = await system.http.post(
        "/v1/alerts",
        content=body,
        headers={"Content-Type": "application/json", "X-Amber-Agency": "txdps"},
    )
    assert_problem(r, 401, "missing_signature")
    assert await stored_keys(system) == []


async def test_bad_signature_is_401_and_nothing_stored(system: System, agency: Agency) -> None:
    """A wrong secret, a changed body or an unknown agency: 401, nothing stored."""
    doc = alert_doc("TX-1", polygon=square(*SA, 0.1))
    body = json.dumps(doc).encode()
    t = int(time.time())
    wrong = signature_header("not-the-secret-at-all", t, "POST", "/v1/alerts", body)
    headers = {"Content-Type": "application/json", "X-Amber-Agency": agency.id}
    r = await system.http.post(
        "/v1/alerts", content=body, headers={**headers, "X-Amber-Signature": wrong}
    )
    assert_problem(r, 401, "bad_signature")
    good = signature_header(agency.secret, t, "POST", "/v1/alerts", body)
    r = await system.http.post(
        "/v1/alerts", content=body + b" ", headers={**headers, "X-Amber-Signature": good}
    )
    assert_problem(r, 401, "bad_signature")
    r = await system.http.post(
        "/v1/alerts",
        content=body,
        headers={**headers, "X-Amber-Agency": "nobody", "X-Amber-Signature": good},
    )
    assert_problem(r, 401, "unknown_agency", "nobody")
    stale = await signed(system.http, "POST", "/v1/alerts", agency, doc, t=t - 3600)
    assert_problem(stale, 401, "stale_signature", "300 s")
    assert await stored_keys(system) == []


async def test_invalid_polygon_is_422_with_the_reason(system: System, agency: Agency) -> None:
    """An unclosed ring is refused with 422 naming the ring and the positions."""
    doc = alert_doc("TX-1", polygon=[[[-98.5, 29.3], [-98.3, 29.3], [-98.3, 29.5], [-98.5, 29.5]]])
    r = await signed(system.http, "POST", "/v1/alerts", agency, doc)
    assert_problem(r, 422, "invalid_geometry", "area.geometry ring 0", "not closed")
    assert await stored_keys(system) == []


BAD_JSON: list[tuple[str, bytes, int, str, str]] = [
    ("not json", b"{nope", 400, "bad_json", "malformed JSON"),
    ("bad utf-8", b'{"identifier": "\xff"}', 400, "bad_utf8", "offset"),
    ("deep nesting", b'{"area":' + b"[" * 100_000 + b"]" * 100_000 + b"}", 422, "schema", "$"),
    ("missing fields", b'{"identifier": "X"}', 422, "schema", "status"),
    ("unknown field", b'{"identifier": "X", "colour": 1}', 422, "schema", "colour"),
]


@pytest.mark.parametrize(
    ("case", "body", "status", "code", "fragment"), BAD_JSON, ids=[c[0] for c in BAD_JSON]
)
async def test_malformed_json_gets_a_precise_problem(
    system: System,
    agency: Agency,
    case: str,
    body: bytes,
    status: int,
    code: str,
    fragment: str,
) -> None:
    """Undecodable or wrongly shaped JSON: 400/422 with the reason, nothing stored."""
    r = await signed(
        system.http, "POST", "/v1/alerts", agency, body, content_type="application/json"
    )
    assert_problem(r, status, code, fragment)
    assert await stored_keys(system) == []


def _doc(**changes: Any) -> dict[str, Any]:
    doc = alert_doc("TX-BAD", polygon=square(*SA, 0.1))
    doc.update(changes)
    return doc


BAD_CONTENT: list[tuple[str, dict[str, Any], int, str, str]] = [
    (
        "lat out of range",
        _doc(area={"circles": [{"lat": 95, "lon": -98, "radius_km": 5}]}),
        422,
        "schema",
        "circles",
    ),
    (
        "lon out of range",
        _doc(
            area={
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[-198.5, 29.3], [-98.3, 29.3], [-98.3, 29.5], [-198.5, 29.3]]],
                }
            }
        ),
        422,
        "coordinate_out_of_range",
        "longitude -198.5",
    ),
    (
        "three points",
        _doc(
            area={
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[-98.5, 29.3], [-98.3, 29.3], [-98.5, 29.3]]],
                }
            }
        ),
        422,
        "invalid_geometry",
        "at least 4",
    ),
    ("expired", _doc(expires="2020-01-01T00:00:00-06:00"), 422, "expired", "in the past"),
    ("too far", _doc(expires="2099-01-01T00:00:00-06:00"), 422, "expires_too_far", "168 h"),
    ("no offset", _doc(expires="2030-01-01T00:00:00"), 422, "bad_time", "offset"),
    ("empty area", _doc(area={}), 422, "empty_area", "at least one"),
    ("unknown SAME", _doc(area={"same": ["048999"]}), 422, "unknown_same_code", "048999"),
    (
        "outside jurisdiction",
        _doc(area={"geometry": {"type": "Polygon", "coordinates": square(35.5, -97.5, 0.2)}}),
        403,
        "outside_jurisdiction",
        "Oklahoma (40)",
    ),
    (
        "SAME outside jurisdiction",
        _doc(area={"same": ["040109"]}),
        403,
        "outside_jurisdiction",
        "SAME 040109",
    ),
    ("photo index", _doc(children=[{"name": "A", "photos": [3]}]), 422, "bad_photo", "index 3"),
]


@pytest.mark.parametrize(
    ("case", "doc", "status", "code", "fragment"), BAD_CONTENT, ids=[c[0] for c in BAD_CONTENT]
)
async def test_invalid_content_gets_a_precise_problem(
    system: System,
    agency: Agency,
    case: str,
    doc: dict[str, Any],
    status: int,
    code: str,
    fragment: str,
) -> None:
    """Content that parses but is wrong: 422 (or 403 for jurisdiction) naming the part."""
    r = await signed(system.http, "POST", "/v1/alerts", agency, doc)
    assert_problem(r, status, code, fragment)
    assert await stored_keys(system) == []


async def test_too_many_vertices_is_422(system: System, agency: Agency) -> None:
    """A polygon with more vertices than max_vertices is refused naming the limit."""
    import math

    n = system.settings.max_vertices + 10
    ring = [
        [-98.5 + 0.1 * math.cos(2 * math.pi * i / n), 29.4 + 0.1 * math.sin(2 * math.pi * i / n)]
        for i in range(n)
    ]
    ring.append(ring[0])
    doc = _doc(area={"geometry": {"type": "Polygon", "coordinates": [ring]}})
    r = await signed(system.http, "POST", "/v1/alerts", agency, doc)
    assert_problem(r, 422, "too_many_vertices", str(system.settings.max_vertices))


async def test_oversized_body_is_413(system: System, agency: Agency) -> None:
    """A body over max_body_bytes is refused with 413 before it is parsed."""
    body = b"{" + b" " * (system.settings.max_body_bytes + 1) + b"}"
    r = await signed(
        system.http, "POST", "/v1/alerts", agency, body, content_type="application/json"
    )
    assert_problem(r, 413, "too_large", str(system.settings.max_body_bytes))


async def test_wrong_content_type_is_415(system: System, agency: Agency) -> None:
    """A body that is neither JSON nor CAP XML by its Content-Type gets 415."""
    r = await signed(system.http, "POST", "/v1/alerts", agency, b"hello", content_type="text/plain")
    assert_problem(r, 415, "unsupported_media_type", "text/plain")


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&x;</identifier></alert>"""


async def test_cap_xxe_is_refused(system: System, agency: Agency) -> None:
    """A CAP body with a DTD/external entity is refused with 400, never resolved."""
    r = await signed(
        system.http, "POST", "/v1/alerts", agency, XXE, content_type="application/cap+xml"
    )
    assert_problem(r, 400, "forbidden_xml")
    assert await stored_keys(system) == []


async def test_schema_is_published(system: System) -> None:
    """GET /v1/schema/alert.json serves the JSON schema of the alert body."""
    r = await system.http.get("/v1/schema/alert.json")
    assert r.status_code == 200
    assert "AlertIn" in json.dumps(r.json())


async def test_poll_fallback_answers_like_a_hello(system: System, agency: Agency) -> None:
    """GET /v1/alerts/active returns covering alerts, honours seen, and is cacheable."""
    r = await signed(
        system.http, "POST", "/v1/alerts", agency, alert_doc("TX-POLL", polygon=square(*SA, 0.1))
    )
    assert r.status_code == 202
    for _ in range(250):  # bounded: the worker applies it within milliseconds
        got = await system.http.get("/v1/alerts/active", params={"lat": SA[0], "lon": SA[1]})
        if got.json()["alerts"]:
            break
        await __import__("asyncio").sleep(0.02)
    assert [a["id"] for a in got.json()["alerts"]] == ["txdps/TX-POLL"]
    assert "max-age" in got.headers["cache-control"]
    again = await system.http.get(
        "/v1/alerts/active",
        params={"lat": SA[0], "lon": SA[1]},
        headers={"If-None-Match": got.headers["etag"]},
    )
    assert again.status_code == 304
    seen = await system.http.get(
        "/v1/alerts/active", params={"lat": SA[0], "lon": SA[1], "seen": "txdps/TX-POLL:1"}
    )
    assert seen.json() == {"alerts": [], "clears": []}
    outside = await system.http.get("/v1/alerts/active", params={"lat": 40.0, "lon": -75.0})
    assert outside.json()["alerts"] == []
    bad = await system.http.get("/v1/alerts/active", params={"lat": 95, "lon": 0})
    assert_problem(bad, 400, "bad_query")


async def test_config_points_the_page_at_the_bound_stream(system: System) -> None:
    """/v1/config names the stream's real port, and wss when the request came over TLS."""
    port = system.stream_url.rsplit(":", 1)[1].split("/")[0]
    r = await system.http.get("/v1/config")
    assert r.json()["stream_url"] == f"ws://127.0.0.1:{port}/v1/stream"
    r = await system.http.get("/v1/config", headers={"X-Forwarded-Proto": "https"})
    assert r.json()["stream_url"] == f"wss://127.0.0.1:{port}/v1/stream"
