"""AMBER_PUBLIC_STATES: only alerts touching a pilot state reach the public."""

from __future__ import annotations

import asyncio

import pytest
import shapely
from shapely.geometry.base import BaseGeometry

from amber_relay.pilot import parse_states
from amber_relay.settings import Settings
from tests.conftest import running_system
from tests.support import Agency, Client, alert_doc, seconds, square

SA = (29.42, -98.49)


def square_geom() -> BaseGeometry:
    return shapely.box(0, 0, 1, 1)


def test_parse_states_refuses_what_is_not_a_state() -> None:
    """Codes are 2-digit state FIPS; empty means every state."""
    assert parse_states("") == frozenset()
    assert parse_states(" 48, 40 ") == {"48", "40"}
    for bad in ("TX", "480", "4"):
        with pytest.raises(ValueError, match="2-digit"):
            parse_states(bad)
    with pytest.raises(ValueError, match="no state"):
        parse_states("99", {"48": square_geom()})


@pytest.mark.asyncio
async def test_alert_outside_the_pilot_is_stored_not_public(
    settings: Settings, agency: Agency
) -> None:
    """With Oklahoma as the pilot, a Texas-only alert is accepted with a warning, stored as
    not public and not delivered; one reaching into Oklahoma is delivered."""
    async with running_system(settings.replace(public_states="40")) as system:
        ready = await system.http.get("/readyz")
        assert ready.json()["public_states"] == ["40"]
        metrics = (await system.http.get("/metrics")).text
        assert 'amber_public_states{states="40"} 1.0' in metrics

        c = await Client.open(system.stream_url, lat=SA[0], lon=SA[1])
        body = await system.post(agency, alert_doc("TX-PILOT", polygon=square(*SA, 0.1)))
        assert any("outside the pilot states" in w for w in body["warnings"])
        # Reaches from San Antonio into Oklahoma: public. The client's next frame.
        national = Agency("ncmec", agency.secret)
        strip = [[[-98.6, 29.3], [-98.4, 29.3], [-98.4, 35.0], [-98.6, 35.0], [-98.6, 29.3]]]
        await system.post(national, alert_doc("US-PILOT", polygon=strip))
        assert (await c.next_of("interrupt"))["alert"]["id"] == "ncmec/US-PILOT"
        for _ in range(250):  # bounded: until the version is applied (milliseconds)
            status = await system.status(agency, "TX-PILOT")
            if status["applied_version"] == 1:
                break
            await asyncio.sleep(seconds(0.02))
        assert status["state"] == "stored (outside the pilot states, not public)"
