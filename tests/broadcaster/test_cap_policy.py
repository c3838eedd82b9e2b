"""Issue 10 through the live hook: jurisdiction as geography, the antimeridian, the
AMBER-only event policy, declared encodings, limits, reused CAP keys, sent skew and
marine SAME codes."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from amber_relay.settings import Settings
from tests.conftest import System, running_system
from tests.support import Agency, Client, alert_doc, signed

pytestmark = pytest.mark.asyncio

CAP = "application/cap+xml"
NATIONAL = "ncmec"  # jurisdiction ["US"] in the test agencies file
SAN_ANTONIO = (29.42, -98.49)
ATTU = (52.9, 172.9)
LONDON = (51.5, -0.13)
SA_POLYGON = "<polygon>29.22,-98.69 29.62,-98.69 29.62,-98.29 29.22,-98.29 29.22,-98.69</polygon>"
TORONTO_POLYGON = (
    "<polygon>43.60,-79.50 43.75,-79.50 43.75,-79.30 43.60,-79.30 43.60,-79.50</polygon>"
)


def cap_time(minutes: float = 0.0) -> str:
    t = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=minutes)
    return t.strftime("%Y-%m-%dT%H:%M:%S-00:00")


def cap(
    ident: str,
    area: str,
    *,
    sent: str | None = None,
    event_code: str = "CAE",
    headline: str = "AMBER Alert: test child",
    description: str = "A test alert.",
    status: str = "Actual",
    encoding: str = "UTF-8",
) -> bytes:
    """A CAP 1.2 Alert expiring in six hours, encoded as its declaration says."""
    text = f"""<?xml version="1.0" encoding="{encoding}"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{ident}</identifier><sender>amber@dps.example</sender>
  <sent>{sent or cap_time()}</sent><status>{status}</status>
  <msgType>Alert</msgType><scope>Public</scope>
  <info><category>Rescue</category><event>Event {event_code}</event>
    <urgency>Immediate</urgency><severity>Severe</severity><certainty>Likely</certainty>
    <eventCode><valueName>SAME</valueName><value>{event_code}</value></eventCode>
    <expires>{cap_time(360)}</expires><headline>{headline}</headline>
    <description>{description}</description>
    <area><areaDesc>test area</areaDesc>{area}</area></info>
</alert>"""
    return text.encode(encoding)


async def post(
    system: System, agency: Agency, body: bytes | dict[str, Any], t: int | None = None
) -> Any:
    ctype = CAP if isinstance(body, bytes) else None
    return await signed(system.http, "POST", "/v1/alerts", agency, body, content_type=ctype, t=t)


async def poll_ids(system: System, lat: float, lon: float) -> list[str]:
    r = await system.http.get("/v1/alerts/active", params={"lat": lat, "lon": lon})
    assert r.status_code == 200, r.text
    return [a["id"] for a in r.json()["alerts"]]


@pytest_asyncio.fixture
async def open_system(settings: Settings) -> AsyncIterator[System]:
    """The system accepting every event code and a margin wide enough for the Aleutians."""
    wide = settings.replace(accepted_event_codes=("*",), jurisdiction_margin_km=600.0)
    async with running_system(wide) as running:
        yield running


# --- 1. jurisdiction ---------------------------------------------------------------------


async def test_toronto_polygon_from_a_us_agency_is_403(system: System, agency: Agency) -> None:
    """A US-wide agency's CAP polygon over Toronto is refused, naming the polygon."""
    r = await post(system, Agency(NATIONAL, agency.secret), cap("CAP-TOR", TORONTO_POLYGON))
    assert r.status_code == 403, r.text
    body = r.json()
    assert body["code"] == "outside_jurisdiction"
    assert body["detail"].startswith("area.geometry reaches outside the United States")


async def test_texas_plus_northern_mexico_is_403(system: System, agency: Agency) -> None:
    """A Texas agency's polygon reaching 100 km into Mexico is refused."""
    poly = [[[-100.6, 27.0], [-99.5, 27.0], [-99.5, 28.2], [-100.6, 28.2], [-100.6, 27.0]]]
    r = await post(system, agency, alert_doc("TX-MX", polygon=poly))
    assert r.status_code == 403, r.text
    assert "reaches outside Texas (48) and its 22.2 km margin" in r.json()["detail"]


# --- 2. antimeridian ---------------------------------------------------------------------


async def test_ring_across_180_reaches_attu_not_london(open_system: System, agency: Agency) -> None:
    """A CAP polygon drawn across 180 deg is split: Attu gets it, London does not."""
    at_attu = await Client.open(open_system.stream_url, lat=ATTU[0], lon=ATTU[1])
    ring = "<polygon>51.0,172.0 51.0,-176.0 54.0,-176.0 54.0,172.0 51.0,172.0</polygon>"
    r = await post(open_system, Agency(NATIONAL, agency.secret), cap("CAP-ALEUT", ring))
    assert r.status_code == 202, r.text
    assert any("antimeridian" in w for w in r.json()["warnings"])
    assert (await at_attu.next_of("interrupt"))["alert"]["id"] == "ncmec/CAP-ALEUT"
    await open_system.wait_active("ncmec/CAP-ALEUT", *ATTU)
    assert "ncmec/CAP-ALEUT" in await poll_ids(open_system, 52.0, -177.0)
    assert "ncmec/CAP-ALEUT" not in await poll_ids(open_system, *LONDON)
    assert "ncmec/CAP-ALEUT" not in await poll_ids(open_system, 52.0, 13.4)  # Berlin's longitude


async def test_multipolygon_split_at_180_reaches_attu(open_system: System, agency: Agency) -> None:
    """A JSON MultiPolygon cut at the antimeridian is accepted and matched on both sides."""
    west = [[172.0, 51.0], [180.0, 51.0], [180.0, 54.0], [172.0, 54.0], [172.0, 51.0]]
    east = [[-180.0, 51.0], [-176.0, 51.0], [-176.0, 54.0], [-180.0, 54.0], [-180.0, 51.0]]
    doc = alert_doc("AK-SPLIT")
    doc["area"] = {"geometry": {"type": "MultiPolygon", "coordinates": [[west], [east]]}}
    r = await post(open_system, Agency(NATIONAL, agency.secret), doc)
    assert r.status_code == 202, r.text
    await open_system.wait_active("ncmec/AK-SPLIT", *ATTU)
    assert "ncmec/AK-SPLIT" in await poll_ids(open_system, 52.0, -177.0)
    assert "ncmec/AK-SPLIT" not in await poll_ids(open_system, *LONDON)
    hello = await Client.open(open_system.stream_url, lat=ATTU[0], lon=ATTU[1])
    assert (await hello.next_of("interrupt"))["alert"]["id"] == "ncmec/AK-SPLIT"


# --- 3. event policy ---------------------------------------------------------------------


async def test_weather_warning_is_422_naming_event(system: System, agency: Agency) -> None:
    """A CAP tornado warning is refused, naming the event and the accepted codes."""
    r = await post(system, agency, cap("CAP-TOR-W", SA_POLYGON, event_code="TOR"))
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "event_not_accepted"
    assert "SAME event code TOR" in r.json()["detail"]
    assert "publishes CAE only" in r.json()["detail"]


async def test_cap_without_same_event_code_is_422(system: System, agency: Agency) -> None:
    """A CAP message without a SAME eventCode is refused; nothing is inferred from <event>."""
    body = cap("CAP-NOCODE", SA_POLYGON).replace(
        b"<eventCode><valueName>SAME</valueName><value>CAE</value></eventCode>", b""
    )
    r = await post(system, agency, body)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "event_code_missing"


async def test_required_monthly_test_is_never_public(open_system: System, agency: Agency) -> None:
    """An RMT with status Actual, accepted by the policy, is stored as test: nobody gets it."""
    c = await Client.open(open_system.stream_url, lat=SAN_ANTONIO[0], lon=SAN_ANTONIO[1])
    r = await post(open_system, agency, cap("CAP-RMT", SA_POLYGON, event_code="RMT"))
    assert r.status_code == 202, r.text
    assert any("never shown to the public" in w for w in r.json()["warnings"])
    await open_system.sentinel(agency, [c], "SENTINEL-RMT")


# --- 4. encodings ------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["ISO-8859-1", "windows-1252", "UTF-16"])
async def test_declared_encoding_reaches_clients_intact(
    system: System, agency: Agency, encoding: str
) -> None:
    """A CAP body in ISO-8859-1, windows-1252 or UTF-16 reaches the client as written."""
    c = await Client.open(system.stream_url, lat=SAN_ANTONIO[0], lon=SAN_ANTONIO[1])
    headline = "AMBER: Niña Peña, 7, São Tomé café"
    r = await post(system, agency, cap("CAP-ENC", SA_POLYGON, headline=headline, encoding=encoding))
    assert r.status_code == 202, r.text
    frame = await c.next_of("interrupt")
    assert frame["alert"]["infos"][0]["headline"] == headline


# --- 5. limits ---------------------------------------------------------------------------


async def test_nws_length_description_is_accepted(system: System, agency: Agency) -> None:
    """A 4,991-character description is accepted and delivered whole."""
    c = await Client.open(system.stream_url, lat=SAN_ANTONIO[0], lon=SAN_ANTONIO[1])
    text = ("HEAVY SNOW... " * 400)[:4991]
    r = await post(system, agency, cap("CAP-LONG", SA_POLYGON, description=text))
    assert r.status_code == 202, r.text
    assert (await c.next_of("interrupt"))["alert"]["infos"][0]["description"] == text.strip()


async def test_over_long_text_names_field_length_and_limit(system: System, agency: Agency) -> None:
    """A description over the limit is 422 naming the CAP element, its length and the limit."""
    r = await post(system, agency, cap("CAP-2LONG", SA_POLYGON, description="x" * 10_001))
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == "info 0 <description>: 10001 characters; the limit is 10000"


# --- 6. no silent loss -------------------------------------------------------------------


async def test_same_cap_key_with_other_content_is_409(system: System, agency: Agency) -> None:
    """The same (sender, identifier, sent) with another headline is 409 naming it."""
    sent = cap_time()
    first = cap("CAP-KEY", SA_POLYGON, sent=sent)
    t = int(time.time())
    assert (await post(system, agency, first, t=t)).status_code == 202
    replay = await post(system, agency, first, t=t - 7)  # the same body, a fresh signature
    assert replay.status_code == 202 and replay.headers["Amber-Idempotent-Replay"] == "true"
    changed = cap("CAP-KEY", SA_POLYGON, sent=sent, headline="AMBER Alert: other child")
    r = await post(system, agency, changed)
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "identifier_reused"
    assert "infos[0].headline" in r.json()["detail"]
    assert "sent" not in r.json()["detail"].split("(")[1]


async def test_sent_seven_hours_ahead_is_422(system: System, agency: Agency) -> None:
    """A sent seven hours in the future (a time-zone mistake) is refused naming the skew."""
    r = await post(system, agency, cap("CAP-SKEW", SA_POLYGON, sent=cap_time(7 * 60)))
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "sent_in_future"
    assert "7 h" in r.json()["detail"]


# --- 7. marine SAME codes ----------------------------------------------------------------


async def test_marine_codes_in_a_land_alert_are_ignored(system: System, agency: Agency) -> None:
    """Bexar County plus a Gulf marine zone: accepted with a warning naming the zone."""
    area = (
        "<geocode><valueName>SAME</valueName><value>048029</value></geocode>"
        "<geocode><valueName>SAME</valueName><value>077250</value></geocode>"
    )
    r = await post(system, agency, cap("CAP-MARINE", area))
    assert r.status_code == 202, r.text
    assert any("077250 ignored" in w for w in r.json()["warnings"])
    unknown = area.replace("048029", "048999")
    r = await post(system, agency, cap("CAP-UNKNOWN", unknown))
    assert r.status_code == 422 and r.json()["code"] == "unknown_same_code", r.text
