"""The console's API: preview (dry run with reach), the agency's alert list, map outlines."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from amber_relay.signing import signature_header
from tests.broadcaster.test_lifecycle import CAP, SA_POLYGON, cap_message, cap_time
from tests.conftest import System
from tests.support import Agency, Client, alert_doc, seconds, signed, square

pytestmark = pytest.mark.asyncio

SA = (29.42, -98.49)  # San Antonio, Bexar County (48029)
DALLAS = (32.78, -96.80)


async def preview(
    system: System,
    agency: Agency,
    doc: dict[str, Any] | bytes,
    content_type: str | None = None,
    t: int | None = None,
) -> dict[str, Any]:
    r = await signed(
        system.http, "POST", "/v1/alerts/preview", agency, doc, content_type=content_type, t=t
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def listing(system: System, agency: Agency, state: str) -> httpx.Response:
    """A signed GET /v1/alerts?state=: the signature covers the path with its query."""
    t = int(time.time())
    headers = {
        "X-Amber-Agency": agency.id,
        "X-Amber-Signature": signature_header(
            agency.secret, t, "GET", f"/v1/alerts?state={state}", b""
        ),
    }
    return await system.http.get("/v1/alerts", params={"state": state}, headers=headers)


async def reach_until(
    system: System, agency: Agency, doc: dict[str, Any], want: int
) -> dict[str, Any]:
    """Preview until the broadcasters' published counts show ``want`` (bounded)."""
    body: dict[str, Any] = {}
    start = int(time.time())
    for i in range(150):
        # a signature is single use: same body, so a fresh t for each try
        body = await preview(system, agency, doc, t=start + i)
        if body["reach"]["connected"] == want:
            return body
        await asyncio.sleep(0.2)  # t advances one per try: stay near the clock
    raise AssertionError(f"reach never reached {want}: {body}")


async def test_preview_counts_connected_clients_and_stores_nothing(
    system: System, agency: Agency
) -> None:
    """Reach counts point and county clients inside; nothing is stored or sent."""
    inside = [
        await Client.open(system.stream_url, lat=SA[0] + i * 0.01, lon=SA[1]) for i in range(3)
    ]
    county = await Client.open(system.stream_url, region="48029")
    outside = [await Client.open(system.stream_url, lat=DALLAS[0], lon=DALLAS[1])]
    doc = alert_doc("TX-PREV-1", same=["048029"])
    body = await reach_until(system, agency, doc, 4)
    assert body["ok"] is True and body["problem"] is None and body["stored"] is False
    assert body["version"] == 1 and body["public"] is True
    # the county and its neighbours, which share its border (as the hub matches them)
    counties = {c["fips"]: c["name"] for c in body["counties"]}
    assert counties["48029"].startswith("Bexar") and "48453" not in counties
    assert body["area"]["type"] in ("Polygon", "MultiPolygon")
    assert body["alert"]["infos"][0]["headline"] == doc["headline"]
    assert body["reach"]["as_of"].endswith("+00:00")
    # nothing stored: the id is still unknown and no client got a frame
    r = await signed(system.http, "GET", "/v1/alerts/TX-PREV-1", agency)
    assert r.status_code == 404
    await system.sentinel(agency, inside + [county] + outside, "TX-PREV-SENTINEL")


async def test_preview_embeds_the_problem_the_hook_would_give(
    system: System, agency: Agency
) -> None:
    """Jurisdiction and validation problems come back embedded, naming the field."""
    body = await preview(system, agency, alert_doc("TX-PREV-2", same=["040109"]))
    assert body["ok"] is False
    assert body["problem"]["status"] == 403 and body["problem"]["field"] == "area.same"
    body = await preview(
        system,
        agency,
        alert_doc("TX-PREV-3", circles=[{"lat": SA[0], "lon": SA[1], "radius_km": 5000}]),
    )
    assert body["problem"]["code"] == "radius_too_large"
    assert body["problem"]["field"] == "area.circles[0].radius_km"
    bad = alert_doc("TX-PREV-4", same=["048029"], children=[{"age": "seven"}])
    body = await preview(system, agency, bad)
    assert body["problem"]["status"] == 422 and body["problem"]["field"] == "children[0].age"
    # the hook gives the same problem for the same body
    r = await signed(system.http, "POST", "/v1/alerts", agency, bad)
    assert r.status_code == 422 and r.json()["field"] == "children[0].age"


async def test_preview_of_another_agencys_id_and_of_an_update(
    system: System, agency: Agency, other_agency: Agency
) -> None:
    """A preview says the version a send would make; another agency's same identifier is
    its own new alert (ids are per agency)."""
    await system.post(agency, alert_doc("TX-PREV-5", polygon=square(*SA, 0.1)))
    body = await preview(system, agency, alert_doc("TX-PREV-5", polygon=square(*SA, 0.2)))
    assert body["ok"] is True and body["version"] == 2
    body = await preview(system, other_agency, alert_doc("TX-PREV-5", same=["040109"]))
    assert body["ok"] is True and body["version"] == 1
    assert body["id"] == "okdps/TX-PREV-5"


async def test_preview_refuses_bad_signatures_with_their_status(
    system: System, agency: Agency
) -> None:
    """A wrong secret is a 401 (not an embedded problem); a replayed signature too."""
    doc = alert_doc("TX-P", same=["048029"])
    wrong = Agency(agency.id, "x" * 32)
    r = await signed(system.http, "POST", "/v1/alerts/preview", wrong, doc)
    assert r.status_code == 401 and r.json()["code"] == "bad_signature"
    t = int(time.time())
    first = await signed(system.http, "POST", "/v1/alerts/preview", agency, doc, t=t)
    assert first.status_code == 200
    again = await signed(system.http, "POST", "/v1/alerts/preview", agency, doc, t=t)
    assert again.status_code == 401 and again.json()["code"] == "replayed_signature"


async def test_preview_of_cap(system: System, agency: Agency) -> None:
    """A CAP body previews like a JSON one: its id, polygon area and counties."""
    body = await preview(
        system, agency, cap_message("Alert", "CAP-P1", cap_time(), SA_POLYGON), CAP
    )
    assert body["ok"] is True, body
    assert body["id"] == "txdps/TX-CAP-INC-9" and body["kind"] == "alert"
    assert "48029" in [c["fips"] for c in body["counties"]]


async def test_agency_lists_only_its_own_alerts(
    system: System, agency: Agency, other_agency: Agency
) -> None:
    """GET /v1/alerts?state= lists the signing agency's alerts only; recent keeps ended ones."""
    await system.post(agency, alert_doc("TX-LIST-1", polygon=square(*SA, 0.1)))
    await system.post(agency, alert_doc("TX-LIST-2", polygon=square(*SA, 0.1)))
    await system.post(other_agency, alert_doc("OK-LIST-1", same=["040109"]))
    r = await signed(system.http, "DELETE", "/v1/alerts/TX-LIST-1", agency)
    assert r.status_code == 202
    for _ in range(250):  # bounded: the cancel is applied within milliseconds
        r = await listing(system, agency, "active")
        assert r.status_code == 200, r.text
        if [a["id"] for a in r.json()["alerts"]] == ["txdps/TX-LIST-2"]:
            break
        await asyncio.sleep(seconds(0.02))
    active = r.json()["alerts"]
    assert [a["id"] for a in active] == ["txdps/TX-LIST-2"]
    assert active[0]["headline"] == "AMBER Alert: test child"
    r = await listing(system, agency, "recent")
    recent = {a["id"]: a for a in r.json()["alerts"]}
    assert set(recent) == {"txdps/TX-LIST-1", "txdps/TX-LIST-2"}
    assert recent["txdps/TX-LIST-1"]["state"] == "cancelled"
    r = await listing(system, other_agency, "recent")
    assert [a["id"] for a in r.json()["alerts"]] == ["okdps/OK-LIST-1"]
    r = await listing(system, agency, "bogus")
    assert r.status_code == 400
    r = await listing(system, Agency(agency.id, "y" * 32), "active")
    assert r.status_code == 401


async def test_outlines_are_simplified_geojson_of_the_geodata(system: System) -> None:
    """States and one state's counties come back as GeoJSON, cached with an ETag."""
    r = await system.http.get("/v1/geo/counties.json", params={"state": "48"})
    assert r.status_code == 200
    features = r.json()["features"]
    assert len(features) == 254
    bexar = next(f for f in features if f["id"] == "48029")
    assert bexar["properties"]["name"].startswith("Bexar")
    assert bexar["geometry"]["type"] in ("Polygon", "MultiPolygon")
    again = await system.http.get(
        "/v1/geo/counties.json",
        params={"state": "48"},
        headers={"If-None-Match": r.headers["etag"]},
    )
    assert again.status_code == 304
    states = (await system.http.get("/v1/geo/states.json")).json()["features"]
    assert "48" in {f["id"] for f in states}
    bad = await system.http.get("/v1/geo/counties.json", params={"state": "99"})
    assert bad.status_code == 400 and bad.json()["code"] == "bad_query"


async def test_console_page_is_served(system: System) -> None:
    """GET /console is the console page, its script and styles from /web/."""
    r = await system.http.get("/console")
    assert r.status_code == 200 and "/web/console.js" in r.text
    for path in ("/web/console.js", "/web/render.js", "/web/map.js", "/web/console.css"):
        assert (await system.http.get(path)).status_code == 200, path
