"""The hub's figures are honest: acks count once, and only for what a socket was sent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from amber_relay.settings import Settings
from tests.conftest import System, running_system
from tests.support import Agency, Client, alert_doc, seconds, signed, square

pytestmark = pytest.mark.asyncio

SA = (29.42, -98.49)
DALLAS = (32.78, -96.80)
EVENTS = ("shown", "dismissed", "call", "more")


@pytest_asyncio.fixture
async def unlimited(settings: Settings) -> AsyncIterator[System]:
    """A system whose per-socket ack rate is out of the way: only the hub's rule counts."""
    lax = settings.replace(stream_ack_rate_per_s=1e9, stream_rate_burst=10**6)
    async with running_system(lax) as running:
        yield running


async def figures_once(system: System, agency: Agency, alert_id: str, until: str) -> Any:
    """The version 1 figures, once ``until`` is counted (the stats flush every 50 ms)."""
    for _ in range(250):  # bounded polling of the flush
        figures = (await system.status(agency, alert_id))["versions"]["1"]
        if figures.get(until):
            return figures
        await asyncio.sleep(seconds(0.02))
    raise AssertionError(f"{until} never counted: {figures}")


async def wire_id(system: System, lat: float, lon: float) -> str:
    """The id clients see of the one alert active at (lat, lon), once it is applied."""
    for _ in range(250):  # bounded; applying takes milliseconds
        poll = await system.http.get("/v1/alerts/active", params={"lat": lat, "lon": lon})
        alerts = poll.json()["alerts"]
        if alerts:
            return str(alerts[0]["id"])
        await asyncio.sleep(seconds(0.02))
    raise AssertionError("no alert became active")


async def test_seen_claims_and_repeated_acks_do_not_count(
    unlimited: System, agency: Agency
) -> None:
    """A far socket claiming in its hello that it saw the alert sends 5,000 acks of each
    kind: none counts; a socket that was sent the alert acks each kind three times: each
    counts once."""
    system = unlimited
    real = await Client.open(system.stream_url, lat=SA[0], lon=SA[1])
    await system.post(agency, alert_doc("TX-HONEST", polygon=square(*SA, 0.1)))
    ident = (await real.next_of("interrupt"))["alert"]["id"]
    liar = await Client.open(system.stream_url, lat=DALLAS[0], lon=DALLAS[1], seen=[(ident, 1)])
    for event in EVENTS:
        for _ in range(5000):
            await liar.send({"type": "ack", "id": ident, "version": 1, "event": event})
    async with asyncio.timeout(seconds(30)):
        await (await liar.ws.ping())  # every ack before the pong was handled
    for event in (*EVENTS, *EVENTS, *EVENTS):
        await real.send({"type": "ack", "id": ident, "version": 1, "event": event})
    figures = await figures_once(system, agency, "TX-HONEST", "more")
    # "more" was acked last by the real socket, after the liar's acks were handled: the
    # liar's would be in the same or an earlier flush
    assert figures == {
        "matched": 1,
        "delivered": 1,
        "shown": 1,
        "dismissed": 1,
        "call": 1,
        "more": 1,
    }


async def test_a_claim_still_gets_its_cancel(unlimited: System, agency: Agency) -> None:
    """A socket that says it shows an alert (seen) is not counted, but gets its clear."""
    system = unlimited
    await system.post(agency, alert_doc("TX-CLAIM", polygon=square(*SA, 0.1)))
    ident = await wire_id(system, *SA)
    c = await Client.open(system.stream_url, lat=SA[0], lon=SA[1], seen=[(ident, 1)])
    r = await signed(system.http, "DELETE", "/v1/alerts/TX-CLAIM", agency)
    assert r.status_code == 202
    assert await c.next_of("clear") == {"type": "clear", "id": ident, "reason": "cancelled"}


async def test_ack_of_a_version_never_sent_does_not_count(
    unlimited: System, agency: Agency
) -> None:
    """A socket sent version 2 only cannot ack version 1; acks of version 1 sent before
    version 2 arrived still count once."""
    system = unlimited
    early = await Client.open(system.stream_url, lat=SA[0], lon=SA[1])
    await system.post(agency, alert_doc("TX-VER", polygon=square(*SA, 0.1)))
    ident = (await early.next_of("interrupt"))["alert"]["id"]
    await system.post(agency, alert_doc("TX-VER", polygon=square(*SA, 0.1), headline="v2"))
    await early.next_of("interrupt")
    late = await Client.open(system.stream_url, lat=SA[0], lon=SA[1])
    assert (await late.next_of("interrupt"))["alert"]["version"] == 2
    for _ in range(3):
        await late.send({"type": "ack", "id": ident, "version": 1, "event": "shown"})
    async with asyncio.timeout(seconds(10)):
        await (await late.ws.ping())
    await early.send({"type": "ack", "id": ident, "version": 1, "event": "shown"})
    await early.send({"type": "ack", "id": ident, "version": 1, "event": "more"})
    figures = await figures_once(system, agency, "TX-VER", "more")
    assert (figures["shown"], figures["more"]) == (1, 1)
