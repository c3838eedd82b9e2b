"""The alert lifecycle over HTTP and the stream: updates, cancels, expiry, idempotency, CAP."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import System
from tests.support import Agency, Client, alert_doc, seconds, signed, square

pytestmark = pytest.mark.asyncio

SAN_ANTONIO = (29.42, -98.49)
AUSTIN = (30.27, -97.74)


async def test_update_moves_the_area(system: System, agency: Agency) -> None:
    """An update reaches the new area; sockets only in the old area get clear area_changed."""
    old_only = await Client.open(system.stream_url, lat=SAN_ANTONIO[0], lon=SAN_ANTONIO[1])
    new_only = await Client.open(system.stream_url, lat=AUSTIN[0], lon=AUSTIN[1])
    await system.post(agency, alert_doc("TX-UPD", polygon=square(*SAN_ANTONIO, 0.2)))
    assert (await old_only.next_of("interrupt"))["alert"]["version"] == 1
    answer = await system.post(
        agency,
        alert_doc(
            "TX-UPD", polygon=square(*AUSTIN, 0.2), headline="UPDATE: vehicle seen near Austin"
        ),
    )
    assert answer["version"] == 2
    assert await old_only.next_of("clear") == {
        "type": "clear",
        "id": "txdps/TX-UPD",
        "reason": "area_changed",
    }
    frame = await new_only.next_of("interrupt")
    assert frame["alert"]["version"] == 2
    assert frame["alert"]["infos"][0]["headline"] == "UPDATE: vehicle seen near Austin"


async def test_delete_cancels_and_blocks_updates(system: System, agency: Agency) -> None:
    """DELETE sends clear (cancelled) to the recipients; a later update is refused with 409."""
    c = await Client.open(system.stream_url, lat=SAN_ANTONIO[0], lon=SAN_ANTONIO[1])
    await system.post(agency, alert_doc("TX-DEL", polygon=square(*SAN_ANTONIO, 0.2)))
    await c.next_of("interrupt")
    r = await signed(system.http, "DELETE", "/v1/alerts/TX-DEL", agency)
    assert r.status_code == 202, r.text
    assert r.json()["version"] == 2
    assert await c.next_of("clear") == {
        "type": "clear",
        "id": "txdps/TX-DEL",
        "reason": "cancelled",
    }
    assert (await system.status(agency, "txdps/TX-DEL"))["state"] == "cancelled"
    r = await signed(
        system.http,
        "POST",
        "/v1/alerts",
        agency,
        alert_doc("TX-DEL", polygon=square(*SAN_ANTONIO, 0.3)),
    )
    assert r.status_code == 409
    assert "cancelled" in r.json()["detail"]
    late = await Client.open(system.stream_url, lat=SAN_ANTONIO[0], lon=SAN_ANTONIO[1])
    assert late.frames[0]["active"] == 0


async def test_delete_of_unknown_alert_is_404(system: System, agency: Agency) -> None:
    """Cancelling an alert that never existed is a 404 problem, not a silent success."""
    r = await signed(system.http, "DELETE", "/v1/alerts/NOPE-1", agency)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


async def test_other_agency_cannot_touch_an_alert(
    system: System, agency: Agency, other_agency: Agency
) -> None:
    """An alert id belongs to the agency that created it: others get 404."""
    await system.post(agency, alert_doc("TX-OWN", polygon=square(*SAN_ANTONIO, 0.2)))
    r = await signed(system.http, "DELETE", "/v1/alerts/txdps/TX-OWN", other_agency)
    assert r.status_code == 404
    r = await signed(system.http, "GET", "/v1/alerts/txdps/TX-OWN", other_agency)
    assert r.status_code == 404


async def test_expiry_clears_and_deactivates(system: System, agency: Agency) -> None:
    """At its expiry the alert is cleared (expired) and a new hello no longer gets it."""
    c = await Client.open(system.stream_url, lat=SAN_ANTONIO[0], lon=SAN_ANTONIO[1])
    await system.post(
        agency, alert_doc("TX-EXP", polygon=square(*SAN_ANTONIO, 0.2), expires_in_s=2)
    )
    await c.next_of("interrupt")
    assert await c.next_of("clear", timeout_s=10) == {
        "type": "clear",
        "id": "txdps/TX-EXP",
        "reason": "expired",
    }
    late = await Client.open(
        system.stream_url, lat=SAN_ANTONIO[0], lon=SAN_ANTONIO[1], seen=[("txdps/TX-EXP", 1)]
    )
    assert late.frames[0]["active"] == 0
    assert await late.next_of("clear") == {
        "type": "clear",
        "id": "txdps/TX-EXP",
        "reason": "expired",
    }
    assert (await system.status(agency, "txdps/TX-EXP"))["state"] == "expired"


async def test_same_submission_twice_is_idempotent(system: System, agency: Agency) -> None:
    """The same body again gets the same answer and broadcasts nothing a second time."""
    c = await Client.open(system.stream_url, lat=SAN_ANTONIO[0], lon=SAN_ANTONIO[1])
    doc = alert_doc("TX-IDEM", polygon=square(*SAN_ANTONIO, 0.2))
    first = await signed(system.http, "POST", "/v1/alerts", agency, doc)
    # a retry is signed anew (a fresh t), as the hook requires
    again = await signed(system.http, "POST", "/v1/alerts", agency, doc, t=int(time.time()) + 1)
    assert first.status_code == again.status_code == 202
    assert (
        first.json() == again.json() == {"id": "txdps/TX-IDEM", "version": 1, "status": "accepted"}
    )
    assert again.headers["amber-idempotent-replay"] == "true"
    await c.next_of("interrupt")
    await system.sentinel(agency, [c], "SENTINEL-IDEM")


async def test_replayed_signature_is_refused(system: System, agency: Agency) -> None:
    """Sending the very same signed request twice: the second gets 401 replayed_signature."""
    doc = alert_doc("TX-REPLAY", polygon=square(*SAN_ANTONIO, 0.2))
    t = int(time.time())
    assert (await signed(system.http, "POST", "/v1/alerts", agency, doc, t=t)).status_code == 202
    r = await signed(system.http, "POST", "/v1/alerts", agency, doc, t=t)
    assert r.status_code == 401
    assert r.json()["code"] == "replayed_signature"


async def test_same_codes_resolve_to_counties(system: System, agency: Agency) -> None:
    """A SAME-only alert for Bexar County reaches a socket in Bexar and not one in Travis."""
    bexar = await Client.open(system.stream_url, lat=SAN_ANTONIO[0], lon=SAN_ANTONIO[1])
    travis = await Client.open(system.stream_url, lat=AUSTIN[0], lon=AUSTIN[1])
    county = await Client.open(system.stream_url, region="48029")
    await system.post(agency, alert_doc("TX-SAME", same=["048029"]))
    assert (await bexar.next_of("interrupt"))["alert"]["id"] == "txdps/TX-SAME"
    assert (await county.next_of("interrupt"))["alert"]["id"] == "txdps/TX-SAME"
    await system.sentinel(agency, [travis], "SENTINEL-SAME")


def cap_time(offset_min: float = 0) -> str:
    """A CAP time (offset, never "Z") ``offset_min`` minutes from now."""
    t = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=offset_min)
    return t.isoformat().replace("+00:00", "-00:00")


def cap_message(
    msg_type: str, ident: str, sent: str, area: str, *, refs: str = "", status: str = "Actual"
) -> bytes:
    """A CAP 1.2 message of the incident TX-CAP-INC-9 expiring in six hours."""
    references = f"<references>{refs}</references>" if refs else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{ident}</identifier><sender>amber@dps.example</sender>
  <sent>{sent}</sent><status>{status}</status>
  <msgType>{msg_type}</msgType><scope>Public</scope>{references}
  <incidents>TX-CAP-INC-9</incidents>
  <info><category>Rescue</category><event>Child Abduction Emergency</event>
    <urgency>Immediate</urgency><severity>Severe</severity><certainty>Likely</certainty>
    <eventCode><valueName>SAME</valueName><value>CAE</value></eventCode>
    <expires>{cap_time(360)}</expires><headline>{msg_type}: AMBER Alert test</headline>
    <area><areaDesc>test</areaDesc>{area}</area></info>
</alert>""".encode()


SA_POLYGON = "<polygon>29.22,-98.69 29.62,-98.69 29.62,-98.29 29.22,-98.29 29.22,-98.69</polygon>"
AUSTIN_CIRCLE = "<circle>30.27,-97.74 20</circle>"
CAP = "application/cap+xml"


async def test_cap_alert_update_cancel_chain(system: System, agency: Agency) -> None:
    """CAP Alert, Update and Cancel share the incident id; versions bump; cancel clears."""
    in_sa = await Client.open(system.stream_url, lat=SAN_ANTONIO[0], lon=SAN_ANTONIO[1])
    in_au = await Client.open(system.stream_url, lat=AUSTIN[0], lon=AUSTIN[1])
    t1, t2, t3 = cap_time(0), cap_time(1), cap_time(2)
    first = await system.post(agency, cap_message("Alert", "CAP-1", t1, SA_POLYGON), CAP)
    assert first == {"id": "txdps/TX-CAP-INC-9", "version": 1, "status": "accepted"}
    assert (await in_sa.next_of("interrupt"))["alert"]["id"] == "txdps/TX-CAP-INC-9"
    ref1 = f"amber@dps.example,CAP-1,{t1}"
    update = cap_message("Update", "CAP-2", t2, AUSTIN_CIRCLE, refs=ref1)
    assert (await system.post(agency, update, CAP))["version"] == 2
    assert (await in_au.next_of("interrupt"))["alert"]["version"] == 2
    assert (await in_sa.next_of("clear"))["reason"] == "area_changed"
    refs = f"{ref1} amber@dps.example,CAP-2,{t2}"
    cancel = cap_message("Cancel", "CAP-3", t3, AUSTIN_CIRCLE, refs=refs)
    assert (await system.post(agency, cancel, CAP))["version"] == 3
    assert await in_au.next_of("clear") == {
        "type": "clear",
        "id": "txdps/TX-CAP-INC-9",
        "reason": "cancelled",
    }


async def test_cap_test_status_never_reaches_the_public(system: System, agency: Agency) -> None:
    """A CAP message with status Test is accepted and stored, but no socket gets it."""
    c = await Client.open(system.stream_url, lat=SAN_ANTONIO[0], lon=SAN_ANTONIO[1])
    body = cap_message("Alert", "CAP-T", cap_time(), SA_POLYGON, status="Test")
    alert_id = (await system.post(agency, body, CAP))["id"]
    for _ in range(250):  # bounded: the worker applies within milliseconds
        state = (await system.status(agency, alert_id))["state"]
        if state != "queued":
            break
        await asyncio.sleep(seconds(0.02))
    assert state == "stored (test, not public)"
    await system.sentinel(agency, [c], "SENTINEL-TEST")


async def test_cap_restricted_scope_is_refused(system: System, agency: Agency) -> None:
    """A CAP message not scoped Public is refused with 422 naming the scope."""
    body = cap_message("Alert", "CAP-R", cap_time(), SA_POLYGON).replace(
        b"<scope>Public</scope>", b"<scope>Restricted</scope><restriction>x</restriction>"
    )
    r = await signed(system.http, "POST", "/v1/alerts", agency, body, content_type=CAP)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "cap_scope"
