"""The client stream: resume by seen list, late entry by move, counties, acks, bad frames."""

from __future__ import annotations

import asyncio
import json
import secrets

import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from amber_relay.settings import Settings
from tests.conftest import System, running_system
from tests.support import Agency, Client, alert_doc, seconds, signed, square

pytestmark = pytest.mark.asyncio

SA = (29.42, -98.49)
DALLAS = (32.78, -96.80)


async def test_offline_client_gets_missed_alert_once(system: System, agency: Agency) -> None:
    """An alert published while a client is away arrives on reconnect, and only once."""
    c = await Client.open(system.stream_url, lat=SA[0], lon=SA[1])
    await c.close()
    await system.post(agency, alert_doc("TX-MISS", polygon=square(*SA, 0.1)))
    await system.wait_active("txdps/TX-MISS", *SA)
    back = await Client.open(system.stream_url, lat=SA[0], lon=SA[1])
    assert back.frames[0]["active"] == 1
    frame = await back.next_of("interrupt")
    assert (frame["alert"]["id"], frame["alert"]["version"]) == ("txdps/TX-MISS", 1)
    await system.sentinel(agency, [back], "SENTINEL-MISS")


async def test_seen_alert_is_not_sent_again(system: System, agency: Agency) -> None:
    """A hello listing (id, version) as seen gets nothing for it; a newer version it gets."""
    await system.post(agency, alert_doc("TX-SEEN", polygon=square(*SA, 0.1)))
    first = await Client.open(system.stream_url, lat=SA[0], lon=SA[1])
    await first.next_of("interrupt")
    again = await Client.open(system.stream_url, lat=SA[0], lon=SA[1], seen=[("txdps/TX-SEEN", 1)])
    assert again.frames[0]["active"] == 0
    await system.post(agency, alert_doc("TX-SEEN", polygon=square(*SA, 0.1), headline="v2"))
    assert (await again.next_of("interrupt"))["alert"]["version"] == 2


async def test_cancel_while_offline_yields_clear(system: System, agency: Agency) -> None:
    """A client that showed an alert cancelled while it was away gets clear on reconnect."""
    c = await Client.open(system.stream_url, lat=SA[0], lon=SA[1])
    await system.post(agency, alert_doc("TX-OFF", polygon=square(*SA, 0.1)))
    await c.next_of("interrupt")
    await c.close()
    r = await signed(system.http, "DELETE", "/v1/alerts/TX-OFF", agency)
    assert r.status_code == 202
    for _ in range(250):  # bounded: wait until the worker applied the cancel
        poll = await system.http.get("/v1/alerts/active", params={"lat": SA[0], "lon": SA[1]})
        if not poll.json()["alerts"]:
            break
        await asyncio.sleep(seconds(0.02))
    back = await Client.open(system.stream_url, lat=SA[0], lon=SA[1], seen=[("txdps/TX-OFF", 1)])
    assert await back.next_of("clear") == {
        "type": "clear",
        "id": "txdps/TX-OFF",
        "reason": "cancelled",
    }


async def test_move_into_the_area_delivers_at_once(system: System, agency: Agency) -> None:
    """Late entry: a client moving into an active area gets the alert; the latest move wins."""
    c = await Client.open(system.stream_url, lat=DALLAS[0], lon=DALLAS[1])
    await system.post(agency, alert_doc("TX-MOVE", polygon=square(*SA, 0.1)))
    # a burst of moves: rate-limited, but the final position is applied
    await c.send({"type": "move", "lat": DALLAS[0] + 0.1, "lon": DALLAS[1]})
    await c.send({"type": "move", "lat": DALLAS[0] + 0.2, "lon": DALLAS[1]})
    await c.send({"type": "move", "lat": SA[0], "lon": SA[1]})
    frame = await c.next_of("interrupt")
    assert frame["alert"]["id"] == "txdps/TX-MOVE"


async def test_county_client_gets_polygon_over_part_of_its_county(
    system: System, agency: Agency
) -> None:
    """A region-tagged client (Bexar, 48029) gets an alert drawn over part of its county,
    and a client tagged with a far county (Dallas, 48113) does not."""
    bexar = await Client.open(system.stream_url, region="48029")
    dallas = await Client.open(system.stream_url, region="48113")
    await system.post(agency, alert_doc("TX-CTY", polygon=square(29.3, -98.6, 0.05)))
    assert (await bexar.next_of("interrupt"))["alert"]["id"] == "txdps/TX-CTY"
    await system.sentinel(agency, [dallas], "SENTINEL-CTY")


async def test_acks_feed_the_agency_figures(system: System, agency: Agency) -> None:
    """shown, dismissed, call and more acks are counted per version in the status."""
    clients = [await Client.open(system.stream_url, lat=SA[0], lon=SA[1]) for _ in range(2)]
    await system.post(agency, alert_doc("TX-ACK", polygon=square(*SA, 0.1)))
    for c, events in zip(clients, (["shown", "call"], ["shown", "dismissed", "more"]), strict=True):
        await c.next_of("interrupt")
        for event in events:
            await c.send({"type": "ack", "id": "txdps/TX-ACK", "version": 1, "event": event})
    want = {"matched": 2, "delivered": 2, "shown": 2, "dismissed": 1, "call": 1, "more": 1}
    for _ in range(250):  # the stats flush runs every 50 ms in tests: bounded polling
        r = await signed(system.http, "GET", f"/v1/alerts/TX-ACK?n={secrets.token_hex(6)}", agency)
        if r.json()["versions"]["1"] == want:
            break
        await asyncio.sleep(seconds(0.02))
    assert r.json()["versions"]["1"] == want


BAD_FRAMES: list[tuple[str, str | bytes, int, str]] = [
    ("not json", "{nope", 1007, "not JSON"),
    ("unknown type", '{"type": "shout"}', 1008, "invalid frame"),
    ("lat out of range", '{"type": "hello", "lat": 91, "lon": 0}', 1008, "$.lat"),
    ("move first", '{"type": "move", "lat": 1, "lon": 1}', 1008, "first frame must be hello"),
    ("binary", b"\x00\x01", 1008, "binary frames"),
    ("unknown county", '{"type": "hello", "region": "99999"}', 1008, "unknown region"),
    ("both", '{"type": "hello", "lat": 1, "lon": 1, "region": "48029"}', 1008, "not both"),
]


@pytest.mark.parametrize(
    ("case", "payload", "code", "reason"), BAD_FRAMES, ids=[b[0] for b in BAD_FRAMES]
)
async def test_bad_frame_closes_only_that_socket(
    system: System, agency: Agency, case: str, payload: str | bytes, code: int, reason: str
) -> None:
    """A bad frame closes its socket with 1007/1008 and a reason; others keep being served."""
    bystander = await Client.open(system.stream_url, lat=SA[0], lon=SA[1])
    async with connect(system.stream_url, compression=None) as ws:
        await ws.send(payload)
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(seconds(10)):
                await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == code
    assert reason in closed.value.rcvd.reason
    await system.post(agency, alert_doc("TX-BY", polygon=square(*SA, 0.1)))
    assert (await bystander.next_of("interrupt"))["alert"]["id"] == "txdps/TX-BY"


async def test_second_hello_is_refused(system: System) -> None:
    """A second hello on one socket is a policy violation (use move)."""
    c = await Client.open(system.stream_url, lat=SA[0], lon=SA[1])
    await c.send({"type": "hello", "lat": 1.0, "lon": 1.0})
    with pytest.raises(ConnectionClosed) as closed:
        await c.next()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason.split(";")[0]) == (
        1008,
        "hello already received",
    )


async def test_silent_socket_is_closed_after_hello_timeout(system: System) -> None:
    """A socket that sends no hello within hello_timeout_s is closed with 4408 (retryable)."""
    async with connect(system.stream_url, compression=None) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(seconds(system.settings.hello_timeout_s + 10)):
                await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4408
    assert "no hello" in closed.value.rcvd.reason


async def test_wrong_path_gets_404(system: System) -> None:
    """The stream only lives at /v1/stream; other paths get a problem+json 404."""
    from websockets.exceptions import InvalidStatus

    with pytest.raises(InvalidStatus) as refused:
        async with connect(system.stream_url.replace("/v1/stream", "/nope")):
            pass
    response = refused.value.response
    assert response.status_code == 404
    assert response.headers.get_all("Content-Type") == ["application/problem+json"]
    problem = json.loads(response.body or b"")
    assert problem["code"] == "not_found" and "/v1/stream" in problem["detail"]


async def test_bad_upgrade_is_refused_with_problem_json(system: System) -> None:
    """An upgrade the library refuses (no Sec-WebSocket-Key) is answered problem+json too."""
    host, port = system.stream_url.removeprefix("ws://").split("/")[0].rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            b"GET /v1/stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        async with asyncio.timeout(seconds(10)):
            answer = await reader.read()
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), head
    assert b"Content-Type: application/problem+json" in head
    assert json.loads(body)["code"] == "bad_upgrade"


async def test_resume_holds_when_the_event_stream_is_lost(
    settings: Settings, agency: Agency
) -> None:
    """With the events stream deleted, a new broadcaster still answers hellos from the
    active set: poll-on-reconnect does not depend on the stream's history."""
    async with running_system(settings) as first:
        await first.post(agency, alert_doc("TX-LOST", polygon=square(*SA, 0.1)))
        await first.wait_active("txdps/TX-LOST", *SA)
    assert settings.redis_url is not None
    redis = Redis.from_url(settings.redis_url)
    try:
        assert await redis.delete(settings.redis_prefix + "events") == 1
    finally:
        await redis.aclose()
    async with running_system(settings) as second:
        c = await Client.open(second.stream_url, lat=SA[0], lon=SA[1])
        assert (await c.next_of("interrupt"))["alert"]["id"] == "txdps/TX-LOST"
