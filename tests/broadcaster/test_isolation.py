"""Agencies are isolated: none can block, shadow, read or cancel another's alert."""

from __future__ import annotations

import time

import pytest

from tests.broadcaster.test_lifecycle import CAP, SA_POLYGON, cap_message, cap_time
from tests.conftest import System
from tests.support import Agency, Client, alert_doc, signed, square

pytestmark = pytest.mark.asyncio

SA = (29.42, -98.49)


def national(agency: Agency) -> Agency:
    """The agencies file's ``ncmec`` (jurisdiction US): it may post over Texas too."""
    return Agency("ncmec", agency.secret)


def cap_alert(ident: str, sent: str) -> bytes:
    """A CAP Alert without ``incidents`` (its id is its own identifier)."""
    return cap_message("Alert", ident, sent, SA_POLYGON).replace(
        b"<incidents>TX-CAP-INC-9</incidents>", b""
    )


async def test_cap_message_resent_by_another_agency_cannot_steal_the_cancel(
    system: System, agency: Agency
) -> None:
    """Agency B re-sends A's CAP message verbatim: B gets its own alert; A's Cancel still
    cancels A's alert, which is cleared on screen."""
    client = await Client.open(system.stream_url, lat=SA[0], lon=SA[1])
    t1 = cap_time(0)
    message = cap_alert("CAP-X1", t1)
    first = await system.post(agency, message, CAP)
    assert first["id"] == "txdps/CAP-X1"
    assert (await client.next_of("interrupt"))["alert"]["id"] == "txdps/CAP-X1"

    # Signed a second later: a different signature even though the tests' agencies share
    # a secret.
    r = await signed(
        system.http,
        "POST",
        "/v1/alerts",
        national(agency),
        message,
        content_type=CAP,
        t=int(time.time()) + 1,
    )
    assert r.status_code == 202, r.text
    resent = r.json()
    assert resent["id"] != first["id"]
    assert resent["id"].startswith("ncmec/")
    await client.next_of("interrupt")  # B's own copy, under B's id

    refs = f"amber@dps.example,CAP-X1,{t1}"
    cancel = cap_message("Cancel", "CAP-X2", cap_time(1), SA_POLYGON, refs=refs).replace(
        b"<incidents>TX-CAP-INC-9</incidents>", b""
    )
    answer = await system.post(agency, cancel, CAP)
    assert answer["id"] == "txdps/CAP-X1"
    clear = await client.next_of("clear")
    assert clear == {"type": "clear", "id": "txdps/CAP-X1", "reason": "cancelled"}
    assert (await system.status(agency, "txdps/CAP-X1"))["latest_version"] == 2


async def test_ids_cannot_be_squatted(system: System, agency: Agency) -> None:
    """B posting A's predictable next identifier first does not block A (no 409)."""
    squat = await system.post(national(agency), alert_doc("TX-2026-0043", polygon=square(*SA, 0.1)))
    mine = await system.post(agency, alert_doc("TX-2026-0043", polygon=square(*SA, 0.1)))
    assert squat["id"] == "ncmec/TX-2026-0043"
    assert mine == {"id": "txdps/TX-2026-0043", "version": 1, "status": "accepted"}


async def test_another_agency_can_neither_read_nor_cancel(system: System, agency: Agency) -> None:
    """B's signed GET and DELETE of A's alert (full or bare id) are 404; A's alert stays live."""
    client = await Client.open(system.stream_url, lat=SA[0], lon=SA[1])
    await system.post(agency, alert_doc("TX-MINE", polygon=square(*SA, 0.1)))
    assert (await client.next_of("interrupt"))["alert"]["id"] == "txdps/TX-MINE"
    other = national(agency)
    for path in ("/v1/alerts/txdps/TX-MINE", "/v1/alerts/TX-MINE"):
        r = await signed(system.http, "GET", path, other)
        assert r.status_code == 404, r.text
        assert r.json()["code"] == "alert_unknown"
        r = await signed(system.http, "DELETE", path, other)
        assert r.status_code == 404, r.text
        assert r.json()["code"] == "alert_unknown"
    status = await system.status(agency, "txdps/TX-MINE")
    assert status["latest_version"] == 1
    # The owner may use the full id or its bare identifier.
    r = await signed(system.http, "DELETE", "/v1/alerts/TX-MINE", agency)
    assert r.status_code == 202, r.text
    assert (await client.next_of("clear"))["id"] == "txdps/TX-MINE"


async def test_json_resend_by_another_agency_is_not_a_replay(
    system: System, agency: Agency
) -> None:
    """The same JSON document from B is B's own alert, never A's idempotent answer."""
    doc = alert_doc("TX-SAME-DOC", polygon=square(*SA, 0.1))
    a = await system.post(agency, doc)
    b = await system.post(national(agency), doc)
    assert (a["id"], b["id"]) == ("txdps/TX-SAME-DOC", "ncmec/TX-SAME-DOC")


async def test_cap_message_key_of_another_agency_cannot_redirect_a_cancel(
    system: System, agency: Agency
) -> None:
    """B sends a message with A's sender and identifier (its own incident): A's Cancel that
    references A's message still cancels A's alert."""
    client = await Client.open(system.stream_url, lat=SA[0], lon=SA[1])
    t1 = cap_time(0)
    await system.post(agency, cap_alert("CAP-Y1", t1), CAP)
    assert (await client.next_of("interrupt"))["alert"]["id"] == "txdps/CAP-Y1"
    hijack = cap_message("Alert", "CAP-Y1", cap_time(1), SA_POLYGON).replace(
        b"TX-CAP-INC-9", b"B-INCIDENT"
    )
    await system.post(national(agency), hijack, CAP)
    await client.next_of("interrupt")  # B's own alert
    refs = f"amber@dps.example,CAP-Y1,{t1}"
    cancel = cap_message("Cancel", "CAP-Y2", cap_time(2), SA_POLYGON, refs=refs).replace(
        b"<incidents>TX-CAP-INC-9</incidents>", b""
    )
    answer = await system.post(agency, cancel, CAP)
    assert answer["id"] == "txdps/CAP-Y1"
    assert await client.next_of("clear") == {
        "type": "clear",
        "id": "txdps/CAP-Y1",
        "reason": "cancelled",
    }
