"""The API port's HTTP edge: pre-body auth, timeouts, caps, body budget, readable errors."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator

import pytest

from amber_relay.settings import Settings
from amber_relay.signing import signature_header
from tests.broadcaster._raw import host_port, read_answer, request_head, signed_head
from tests.conftest import System, running_system
from tests.support import Agency, alert_doc, seconds, signed, square

pytestmark = pytest.mark.asyncio

SA = (29.42, -98.49)
MIB = 1024 * 1024


@contextlib.asynccontextmanager
async def api_socket(
    system: System,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection(*host_port(system.endpoints.api_url))
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def assert_closed(reader: asyncio.StreamReader, timeout_s: float = 10.0) -> None:
    """The server closed the connection (EOF or reset) within ``timeout_s``."""
    async with asyncio.timeout(seconds(timeout_s)):
        with contextlib.suppress(ConnectionResetError):
            while await reader.read(65536):
                pass


@pytest.mark.parametrize(
    ("agency_header", "signature", "code"),
    [
        ("nobody", "t=1,v1=" + "0" * 64, "unknown_agency"),
        ("txdps", "garbage", "bad_signature_header"),
        ("txdps", "t=1000,v1=" + "0" * 64, "stale_signature"),
    ],
)
async def test_hook_refuses_before_reading_the_body(
    system: System, agency_header: str, signature: str, code: str
) -> None:
    """Unknown agency, malformed or stale signature: 401 while the 4 MiB body is still unsent."""
    async with api_socket(system) as (reader, writer):
        writer.write(
            request_head(
                "POST",
                "/v1/alerts",
                {
                    "Host": "localhost",
                    "Content-Type": "application/json",
                    "Content-Length": str(4 * MIB),
                    "X-Amber-Agency": agency_header,
                    "X-Amber-Signature": signature,
                },
            )
            + b"{"
        )
        answer = await read_answer(reader)
    assert answer.status == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == code


async def test_half_sent_headers_get_408_and_close(settings: Settings) -> None:
    """A request line without the end of its headers is answered 408 and closed."""
    async with running_system(settings.replace(api_header_timeout_s=0.5)) as system:
        async with api_socket(system) as (reader, writer):
            writer.write(b"GET /v1/schema/alert.json HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            answer = await read_answer(reader)
            assert answer.status == 408
            assert answer.json()["code"] == "request_timeout"
            await assert_closed(reader)
        # A connection that never sends a byte is closed too.
        async with api_socket(system) as (reader, _writer):
            answer = await read_answer(reader)
            assert answer.status == 408


async def test_half_sent_body_gets_408_and_close(settings: Settings, agency: Agency) -> None:
    """Headers of a signed POST, then part of the body and silence: 408 and close."""
    async with running_system(settings.replace(api_body_timeout_s=0.5)) as system:
        body = json.dumps(alert_doc("TX-SLOW", polygon=square(*SA, 0.1))).encode()
        async with api_socket(system) as (reader, writer):
            writer.write(signed_head(agency, "/v1/alerts", body) + body[:10])
            answer = await read_answer(reader)
            assert answer.status == 408
            await assert_closed(reader)


async def test_idle_keepalive_connection_is_closed(settings: Settings) -> None:
    """After an answer, a connection that stays silent is closed after the keep-alive time."""
    async with running_system(settings.replace(api_keepalive_timeout_s=0.3)) as system:
        async with api_socket(system) as (reader, writer):
            writer.write(request_head("GET", "/v1/schema/alert.json", {"Host": "x"}))
            assert (await read_answer(reader)).status == 200
            await assert_closed(reader)


async def test_connections_per_address_are_capped(settings: Settings) -> None:
    """Over the per-address cap a new connection gets 429 problem+json; closing one frees a slot."""
    async with running_system(settings.replace(api_max_connections_per_address=3)) as system:
        address = host_port(system.endpoints.api_url)
        held = [await asyncio.open_connection(*address) for _ in range(2)]  # + the httpx one
        r = await system.http.get("/v1/schema/alert.json")
        assert r.status_code == 200
        reader, writer = await asyncio.open_connection(*address)
        answer = await read_answer(reader)
        assert answer.status == 429
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "too_many_connections"
        writer.close()
        held[0][1].close()
        await assert_closed(held[0][0])
        for _ in range(100):  # bounded: the server sees the close within milliseconds
            reader, writer = await asyncio.open_connection(*address)
            writer.write(request_head("GET", "/v1/schema/alert.json", {"Host": "x"}))
            answer = await read_answer(reader)
            writer.close()
            if answer.status == 200:
                break
            await asyncio.sleep(seconds(0.02))
        assert answer.status == 200
        for _, w in held[1:]:
            w.close()


async def test_total_connections_are_capped(settings: Settings) -> None:
    """Over api_max_connections a new connection gets 503 problem+json with Retry-After."""
    async with running_system(settings.replace(api_max_connections=2)) as system:
        address = host_port(system.endpoints.api_url)
        held = [await asyncio.open_connection(*address) for _ in range(2)]
        reader, writer = await asyncio.open_connection(*address)
        answer = await read_answer(reader)
        writer.close()
        assert answer.status == 503
        assert answer.headers["retry-after"] == "1"
        assert answer.json()["code"] == "busy"
        for _, w in held:
            w.close()


async def test_bodies_in_flight_are_bounded(settings: Settings, agency: Agency) -> None:
    """Past the process's body budget a signed upload gets 503 + Retry-After, not buffered."""
    s = settings.replace(api_body_budget_bytes=MIB, api_body_timeout_s=30)
    async with running_system(s) as system:
        body = b"x" * (700 * 1024)
        async with api_socket(system) as (_r1, w1):
            # The first upload stalls half-way, holding its 700 KiB reservation.
            w1.write(signed_head(agency, "/v1/alerts", body) + body[:1000])
            await w1.drain()
            for _ in range(100):  # bounded: until the first upload holds its reservation
                async with api_socket(system) as (reader, writer):
                    writer.write(signed_head(agency, "/v1/alerts", body))
                    answer = await read_answer(reader)
                if answer.status == 503:
                    break
                await asyncio.sleep(seconds(0.02))
        assert answer.status == 503
        assert answer.headers["retry-after"] == "1"
        assert answer.json()["code"] == "busy"
        # Once the stalled upload is gone, the budget is back.
        doc = alert_doc("TX-BUDGET", polygon=square(*SA, 0.1))
        for _ in range(100):
            r = await signed(system.http, "POST", "/v1/alerts", agency, doc)
            if r.status_code != 503:
                break
            await asyncio.sleep(seconds(0.02))
        assert r.status_code == 202, r.text


async def test_aborted_upload_logs_one_line_without_traceback(
    system: System, agency: Agency, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that drops its upload half-way costs one log line and no traceback."""
    caplog.set_level(logging.INFO)
    body = b"x" * 100_000
    async with api_socket(system) as (_reader, writer):
        writer.write(signed_head(agency, "/v1/alerts", body) + body[:50_000])
        await writer.drain()
    for _ in range(250):  # bounded: the server notices the close within milliseconds
        if any("aborted" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(seconds(0.02))
    # A later request proves the server handled the abort before we look at the log.
    assert (await system.http.get("/v1/schema/alert.json")).status_code == 200
    aborted = [r for r in caplog.records if "aborted" in r.getMessage()]
    assert len(aborted) == 1, [r.getMessage() for r in caplog.records]
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]


def _urllib_post(url: str, agency: Agency, body: bytes) -> tuple[int, str, bytes]:
    sig = signature_header(agency.secret, int(time.time()), "POST", "/v1/alerts", body)
    req = urllib.request.Request(
        url + "/v1/alerts",
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-Amber-Agency": agency.id,
            "X-Amber-Signature": sig,
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=seconds(30)) as r:
            return r.status, r.headers["content-type"], r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["content-type"], e.read()


async def test_16_mib_body_sent_whole_reads_a_413(system: System, agency: Agency) -> None:
    """urllib sends 16 MiB before reading: it still reads the 413 problem+json, no reset."""
    status, ctype, raw = await asyncio.to_thread(
        _urllib_post, system.endpoints.api_url, agency, b"x" * (16 * MIB)
    )
    assert status == 413
    assert ctype == "application/problem+json"
    assert json.loads(raw)["code"] == "too_large"


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/nowhere", 404, "not_found"),
        ("GET", "/web/nothing-here.js", 404, "not_found"),
        ("PUT", "/v1/alerts", 405, "method_not_allowed"),
        ("POST", "/v1/config", 405, "method_not_allowed"),
    ],
)
async def test_router_errors_are_problem_json(
    system: System, method: str, path: str, status: int, code: str
) -> None:
    """The router's own 404 and 405 answer problem+json with a code."""
    r = await system.http.request(method, path)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == code


async def test_malformed_http_is_problem_json(system: System) -> None:
    """A request line that is not HTTP is answered 400 problem+json by the HTTP layer."""
    async with api_socket(system) as (reader, writer):
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        answer = await read_answer(reader)
    assert answer.status == 400
    assert answer.headers["content-type"] == "application/problem+json"


async def test_malformed_request_flood_logs_once(
    system: System, caplog: pytest.LogCaptureFixture
) -> None:
    """Fifty malformed requests are each answered 400 but cost one log line, not fifty."""
    caplog.set_level(logging.WARNING)
    for _ in range(50):
        async with api_socket(system) as (reader, writer):
            writer.write(b"NOT HTTP AT ALL\r\n\r\n")
            assert (await read_answer(reader)).status == 400
    invalid = [r for r in caplog.records if "Invalid HTTP request" in r.getMessage()]
    assert len(invalid) <= 1, len(invalid)


async def test_internal_errors_are_problem_json_without_their_text() -> None:
    """An unexpected exception becomes a 500 problem+json that does not carry its text."""
    import httpx
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from broadcaster._problem import error_handlers

    async def boom(request: Request) -> Response:
        raise RuntimeError("redis at 10.1.2.3:6379 said no")

    app = Starlette(exception_handlers=error_handlers(), routes=[Route("/boom", boom)])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        r = await http.get("/boom")
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "internal_error"
    assert "10.1.2.3" not in r.text


async def test_config_never_echoes_the_host_header(system: System) -> None:
    """/v1/config names the configured host whatever Host the request carries."""
    r = await system.http.get("/v1/config", headers={"Host": "evil.example:666"})
    assert r.status_code == 200
    assert "evil" not in r.text
    assert r.json()["stream_url"].startswith("ws://127.0.0.1:")


async def test_config_names_the_public_stream_url(settings: Settings) -> None:
    """With public_stream_url set, /v1/config names exactly it."""
    url = "wss://alerts.example.org/v1/stream"
    async with running_system(settings.replace(public_stream_url=url)) as system:
        r = await system.http.get("/v1/config", headers={"Host": "evil.example"})
        assert r.json() == {"stream_url": url}


async def test_stream_upgrade_without_host_is_refused(system: System) -> None:
    """A WebSocket upgrade that carries no Host header is refused (400), not upgraded."""
    reader, writer = await asyncio.open_connection(*host_port(system.stream_url))
    try:
        writer.write(
            request_head(
                "GET",
                "/v1/stream",
                {
                    "Upgrade": "websocket",
                    "Connection": "Upgrade",
                    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                    "Sec-WebSocket-Version": "13",
                },
            )
        )
        async with asyncio.timeout(seconds(10)):
            status_line = await reader.readline()
    finally:
        writer.close()
    assert status_line.split()[1] == b"400", status_line


@pytest.mark.parametrize("region", ["48", "048029", "4802x", "٤٨٠٢٩"])
async def test_poll_accepts_only_a_5_digit_region(system: System, region: str) -> None:
    """The poll's region must be exactly five ASCII digits (a county FIPS code)."""
    r = await system.http.get("/v1/alerts/active", params={"region": region})
    assert r.status_code == 400
    assert r.json()["code"] == "bad_query"


async def test_poll_seen_with_odd_digits_is_400(system: System) -> None:
    """A seen version in non-ASCII digits is a 400, not a 500."""
    r = await system.http.get(
        "/v1/alerts/active", params={"region": "48029", "seen": "txdps/TX-1:²"}
    )
    assert r.status_code == 400
    assert r.json()["code"] == "bad_query"


async def test_alert_named_active_can_be_read_back(system: System, agency: Agency) -> None:
    """An alert whose identifier is ``active`` is readable at its full id (no route clash)."""
    body = await system.post(agency, alert_doc("active", polygon=square(*SA, 0.1)))
    assert body["id"] == "txdps/active"
    status = await system.status(agency, "txdps/active")
    assert status["id"] == "txdps/active"


async def test_signed_get_is_single_use(system: System, agency: Agency) -> None:
    """A signed GET replayed with the same signature is refused like any other request."""
    body = await system.post(agency, alert_doc("TX-GET", polygon=square(*SA, 0.1)))
    path = f"/v1/alerts/{body['id']}"
    headers = {
        "X-Amber-Agency": agency.id,
        "X-Amber-Signature": signature_header(agency.secret, int(time.time()), "GET", path, b""),
    }
    first = await system.http.get(path, headers=headers)
    assert first.status_code == 200, first.text
    again = await system.http.get(path, headers=headers)
    assert again.status_code == 401
    assert again.json()["code"] == "replayed_signature"
