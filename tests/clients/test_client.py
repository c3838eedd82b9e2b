"""The client library against the real system: reconnects, dedupe, seen file, poll, refusal.

Reconnects are real: ``node`` is a second serving process of the same deployment (same
Redis and key prefix as ``system``, whose worker applies the alerts) on fixed ports,
stopped and started again. While it is down, alerts are still posted through
``system``'s API, as an agency would during a broadcaster restart.

The client reaches the node through a TCP ``Gate`` that the test shuts while the node
restarts and opens once it is ready: the stream server answers hellos before its hub
is synced from Redis (a window where a shown-then-cancelled alert gets no clear), and
the tests here pin the client's behaviour, not that window.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

import pytest
import pytest_asyncio
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close

from amber_relay import frames
from amber_relay.redis_server import free_port
from amber_relay.settings import Settings
from broadcaster.server import Endpoints, serve
from clients import _stream
from clients.client import AlertClient, ClientError, ConnectionState, Event
from tests.conftest import System
from tests.support import Agency, alert_doc, seconds, signed, square

pytestmark = pytest.mark.asyncio

LAT, LON = 29.42, -98.49  # San Antonio, inside Texas (the agency's jurisdiction)
AREA = square(LAT, LON, 0.1)


class _Fast(TypedDict):
    backoff_base_s: float
    backoff_max_s: float


FAST: _Fast = {"backoff_base_s": 0.05, "backoff_max_s": 0.2}  # reconnect at once in tests


class Gate:
    """A TCP relay to ``target_port``; while shut, it accepts connections and closes them."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.is_open = True
        self.port = 0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[object]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        upstream: asyncio.StreamWriter | None = None
        try:
            if self.is_open:
                up_reader, upstream = await asyncio.open_connection("127.0.0.1", self.target_port)
                await asyncio.gather(_pipe(reader, upstream), _pipe(up_reader, writer))
        except OSError:
            pass  # the node is down: the client sees its connection close
        finally:
            for w in (writer, upstream):
                if w is not None:
                    w.close()
                    with contextlib.suppress(OSError):
                        await w.wait_closed()
            self._handlers.discard(task)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


@dataclass
class Node:
    """A broadcaster (API + stream, no worker) on fixed ports that can be restarted."""

    settings: Settings
    gate: Gate
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._stop = asyncio.Event()
        ready: asyncio.Future[Endpoints] = asyncio.get_running_loop().create_future()
        assert self.settings.redis_url is not None
        self._task = asyncio.create_task(
            serve(
                self.settings,
                redis_url=self.settings.redis_url,
                stop=self._stop,
                on_ready=ready.set_result,
            )
        )
        waiters: set[asyncio.Future[object]] = {self._task, ready}  # type: ignore[arg-type]
        async with asyncio.timeout(seconds(30)):
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if self._task in done:
            self._task.result()  # raises the startup error
        assert ready.result().stream_url.endswith(f":{self.settings.stream_port}/v1/stream")

    @property
    def stream_url(self) -> str:
        """The node's stream, through the gate."""
        return f"ws://127.0.0.1:{self.gate.port}/v1/stream"

    async def restart(self, while_down: Callable[[], Awaitable[None]]) -> None:
        """Stop, run ``while_down``, start; clients get through only once it is ready."""
        self.gate.is_open = False
        await self.stop()
        await while_down()
        await self.start()
        self.gate.is_open = True

    async def stop(self) -> None:
        """Stop serving: open sockets get 1012 (drain), the ports close."""
        self._stop.set()
        if self._task is not None:
            async with asyncio.timeout(seconds(30)):
                await self._task
            self._task = None


@pytest_asyncio.fixture
async def node(system: System) -> AsyncIterator[Node]:
    ports = {"port": free_port(), "stream_port": free_port()}
    gate = Gate(ports["stream_port"])
    await gate.start()
    n = Node(system.settings.replace(**ports), gate)
    await n.start()
    try:
        yield n
    finally:
        await n.stop()
        await gate.close()


class States:
    """Records ``on_state`` calls; lets a test wait for the n-th occurrence of a state."""

    def __init__(self) -> None:
        self.log: list[ConnectionState] = []
        self._changed = asyncio.Event()

    def __call__(self, state: ConnectionState) -> None:
        self.log.append(state)
        self._changed.set()

    def count(self, name: str) -> int:
        return sum(s.state == name for s in self.log)

    async def wait_for(self, name: str, n: int = 1, timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(seconds(timeout_s)):
            while self.count(name) < n:
                self._changed.clear()
                await self._changed.wait()


async def next_event(client: AlertClient, timeout_s: float = 10.0) -> Event:
    async with asyncio.timeout(seconds(timeout_s)):
        return await anext(client)


async def next_interrupt(client: AlertClient, alert_id: str) -> frames.Interrupt:
    """The next event, which must be the interrupt of ``alert_id``."""
    event = await next_event(client)
    assert isinstance(event, frames.Interrupt), event
    assert event.alert.id == alert_id, event
    return event


async def post(system: System, agency: Agency, identifier: str, **extra: object) -> None:
    doc = alert_doc(identifier, polygon=AREA, **extra)  # type: ignore[arg-type]
    r = await signed(system.http, "POST", "/v1/alerts", agency, doc)
    assert r.status_code == 202, r.text


async def wait_applied(system: System, agency: Agency, alert_id: str, state: str) -> None:
    """Wait until the worker has applied the alert's latest version (bounded polling:
    nothing signals it to a test)."""
    async with asyncio.timeout(seconds(10)):
        while True:
            # Each signature is single-use: a random query makes every poll's unique.
            path = f"/v1/alerts/{alert_id}?n={secrets.token_hex(6)}"
            r = await signed(system.http, "GET", path, agency)
            if r.json().get("state") == state:
                return
            await asyncio.sleep(0.02)


async def expect_sentinel_next(system: System, agency: Agency, client: AlertClient) -> None:
    """Post a sentinel alert; the client's next event must be it.

    Frames reach a socket in stream order, so a client whose next event is the
    sentinel provably yielded nothing else in between; no sleeping needed.
    """
    national = Agency("ncmec", agency.secret)  # jurisdiction US in the test agencies file
    doc = alert_doc("SENTINEL", same=["048000"])  # Texas (a square would reach Mexico: 403)
    r = await signed(system.http, "POST", "/v1/alerts", national, doc)
    assert r.status_code == 202, r.text
    await next_interrupt(client, "ncmec/SENTINEL")


async def test_client_yields_interrupt_posted_while_connected(
    system: System, agency: Agency
) -> None:
    """An alert posted while the client is connected inside its area is yielded as Interrupt."""
    states = States()
    async with AlertClient(system.stream_url, lat=LAT, lon=LON, on_state=states) as client:
        await states.wait_for("connected")
        assert client.connected
        await post(system, agency, "TX-C1", headline="AMBER Alert: C1")
        event = await next_interrupt(client, "txdps/TX-C1")
        assert event.alert.version == 1
        assert client.info(event.alert).headline == "AMBER Alert: C1"
    assert not client.connected
    assert states.log[-1].state == "closed"


async def test_client_shows_an_alert_once_across_a_reconnect(
    system: System, node: Node, agency: Agency
) -> None:
    """After a broadcaster restart the hello carries the seen set: nothing is shown twice."""
    states = States()
    async with AlertClient(node.stream_url, lat=LAT, lon=LON, on_state=states, **FAST) as client:
        await states.wait_for("connected")
        await post(system, agency, "TX-R1")
        await next_interrupt(client, "txdps/TX-R1")

        async def down() -> None:
            await states.wait_for("disconnected")

        await node.restart(down)
        first = next(s for s in states.log if s.state == "disconnected")
        assert "1012" in first.detail  # service restart (drain): retried, not fatal
        await states.wait_for("connected", 2)
        assert client.welcome is not None and client.welcome.active == 0
        await expect_sentinel_next(system, agency, client)


async def test_client_gets_alert_published_while_disconnected_exactly_once(
    system: System, node: Node, agency: Agency
) -> None:
    """An alert posted while the client's broadcaster is down arrives once on reconnect."""
    states = States()
    async with AlertClient(node.stream_url, lat=LAT, lon=LON, on_state=states, **FAST) as client:
        await states.wait_for("connected")

        async def down() -> None:
            await states.wait_for("disconnected")
            await post(system, agency, "TX-D1")
            await wait_applied(system, agency, "TX-D1", "active")

        await node.restart(down)
        await next_interrupt(client, "txdps/TX-D1")
        assert client.welcome is not None and client.welcome.active == 1
        await expect_sentinel_next(system, agency, client)


async def test_client_yields_clear_for_cancel_while_disconnected(
    system: System, node: Node, agency: Agency
) -> None:
    """An alert shown, then cancelled while the client is away, is cleared on reconnect."""
    states = States()
    async with AlertClient(node.stream_url, lat=LAT, lon=LON, on_state=states, **FAST) as client:
        await states.wait_for("connected")
        await post(system, agency, "TX-X1")
        await next_interrupt(client, "txdps/TX-X1")

        async def down() -> None:
            r = await signed(system.http, "DELETE", "/v1/alerts/TX-X1", agency)
            assert r.status_code == 202, r.text
            await wait_applied(system, agency, "TX-X1", "cancelled")

        await node.restart(down)
        event = await next_event(client)
        assert event == frames.Clear(id="txdps/TX-X1", reason="cancelled")
        await expect_sentinel_next(system, agency, client)


async def test_client_yields_newer_version_of_a_shown_alert(system: System, agency: Agency) -> None:
    """An update (same id, version 2) of a shown alert is yielded again."""
    async with AlertClient(system.stream_url, lat=LAT, lon=LON) as client:
        await post(system, agency, "TX-U1", headline="AMBER Alert: first")
        assert (await next_interrupt(client, "txdps/TX-U1")).alert.version == 1
        await post(system, agency, "TX-U1", headline="AMBER Alert: update")
        event = await next_interrupt(client, "txdps/TX-U1")
        assert event.alert.version == 2
        assert event.alert.headline == "AMBER Alert: update"


async def test_client_seen_file_survives_a_new_instance(
    system: System, agency: Agency, tmp_path: Path
) -> None:
    """A second AlertClient on the same seen file does not show the first one's alert again."""
    path = tmp_path / "seen.json"
    async with AlertClient(system.stream_url, lat=LAT, lon=LON, seen_path=path) as first:
        await post(system, agency, "TX-S1")
        await next_interrupt(first, "txdps/TX-S1")
    assert json.loads(path.read_text())["shown"] == [["txdps/TX-S1", 1]]
    states = States()
    async with AlertClient(
        system.stream_url, lat=LAT, lon=LON, seen_path=path, on_state=states
    ) as second:
        await states.wait_for("connected")
        assert second.welcome is not None and second.welcome.active == 0
        await expect_sentinel_next(system, agency, second)


async def test_client_polls_while_the_stream_is_unreachable(system: System, agency: Agency) -> None:
    """With no stream server, the client yields alerts and clears from the HTTP poll."""
    states = States()
    dead_stream = f"ws://127.0.0.1:{free_port()}/v1/stream"
    async with AlertClient(
        dead_stream,
        lat=LAT,
        lon=LON,
        api_url=system.endpoints.api_url,
        poll_after_failures=1,
        poll_interval_s=0.2,
        on_state=states,
        **FAST,
    ) as client:
        await states.wait_for("polling")
        await post(system, agency, "TX-P1")
        event = await next_interrupt(client, "txdps/TX-P1")
        assert event.alert.version == 1
        r = await signed(system.http, "DELETE", "/v1/alerts/TX-P1", agency)
        assert r.status_code == 202, r.text
        assert await next_event(client) == frames.Clear(id="txdps/TX-P1", reason="cancelled")
        assert states.count("connected") == 0


async def test_client_hands_over_from_poll_to_socket_without_repeats(
    system: System, node: Node, agency: Agency
) -> None:
    """An alert shown from the poll is in the next hello's seen set: not shown again."""
    states = States()
    node.gate.is_open = False  # the stream port answers, but no handshake completes
    async with AlertClient(
        node.stream_url,
        lat=LAT,
        lon=LON,
        api_url=system.endpoints.api_url,
        poll_after_failures=1,
        poll_interval_s=0.2,
        on_state=states,
        **FAST,
    ) as client:
        await states.wait_for("polling")
        await post(system, agency, "TX-H1")
        await next_interrupt(client, "txdps/TX-H1")
        node.gate.is_open = True
        await states.wait_for("connected")
        assert client.welcome is not None and client.welcome.active == 0
        await expect_sentinel_next(system, agency, client)


async def test_client_move_brings_the_alert_covering_the_new_place(
    system: System, agency: Agency
) -> None:
    """A client outside the area gets nothing; after move() into it, gets the alert."""
    states = States()
    async with AlertClient(system.stream_url, lat=30.5, lon=-97.0, on_state=states) as client:
        await states.wait_for("connected")
        await post(system, agency, "TX-M1")
        await client.move(lat=LAT, lon=LON)
        await next_interrupt(client, "txdps/TX-M1")


async def test_client_ack_is_counted_by_the_server(system: System, agency: Agency) -> None:
    """A shown ack sent on the socket shows up in the alert's delivery figures."""
    async with AlertClient(system.stream_url, lat=LAT, lon=LON) as client:
        await post(system, agency, "TX-A1")
        event = await next_interrupt(client, "txdps/TX-A1")
        assert await client.ack(event.alert.id, event.alert.version, "shown")
        for bad in (("txdps/TX-A1", 1, "liked"), ("txdps/TX-A1", 0, "shown"), ("", 1, "shown")):
            with pytest.raises(ValueError):
                await client.ack(*bad)  # type: ignore[arg-type]
        assert client.connected  # nothing bad was sent, so nothing was refused
    shown = 0
    async with asyncio.timeout(seconds(10)):
        while shown != 1:  # stats are flushed every 50 ms in tests: bounded polling
            r = await signed(
                system.http, "GET", f"/v1/alerts/TX-A1?n={secrets.token_hex(6)}", agency
            )
            shown = r.json()["versions"]["1"]["shown"]
            if shown != 1:
                await asyncio.sleep(0.02)


async def test_client_unknown_region_is_fatal(system: System) -> None:
    """A hello with a region that is no county is refused with 1008: ClientError, no retry."""
    states = States()
    with pytest.raises(ClientError) as info:
        async with AlertClient(system.stream_url, region="99999", on_state=states) as client:
            await next_event(client)
    assert info.value.code == 1008
    assert "99999" in info.value.reason
    assert states.count("connecting") == 1


async def test_client_wrong_path_is_fatal(system: System) -> None:
    """A stream URL the server has no stream at fails at once with the HTTP status."""
    url = system.stream_url.replace("/v1/stream", "/nope")
    with pytest.raises(ClientError) as info:
        async with AlertClient(url, lat=LAT, lon=LON, **FAST) as client:
            await next_event(client, timeout_s=3)
    assert info.value.code == 404


async def test_client_cancelled_iteration_closes_the_socket(system: System) -> None:
    """Cancelling the task iterating a client ends it promptly and closes the connection."""
    states = States()
    entered = asyncio.Event()

    async def app() -> None:
        async with AlertClient(system.stream_url, lat=LAT, lon=LON, on_state=states) as c:
            entered.set()
            async for _ in c:
                pass

    task = asyncio.create_task(app())
    await states.wait_for("connected")
    task.cancel()
    async with asyncio.timeout(seconds(5)):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert entered.is_set()
    assert states.log[-1] == ConnectionState("closed", "closed by the app")


async def test_client_sorts_close_codes_into_fatal_and_retryable() -> None:
    """Refusals of this client's own frames are fatal; restarts, errors and a late hello retry."""
    for code in (1007, 1008, 1009):
        with pytest.raises(_stream.Refused):
            _stream.ending(ConnectionClosed(Close(code, "bad frame"), None))
    for code in (1000, 1001, 1011, 1013):
        assert str(code) in _stream.ending(ConnectionClosed(Close(code, ""), None))
    assert _stream.ending(ConnectionClosed(Close(4408, "no hello within 5 s"), None))
    assert _stream.ending(ConnectionClosed(None, None)) == "connection lost (1006)"


async def test_client_rejects_bad_arguments_before_connecting() -> None:
    """Bad URLs and positions raise ValueError in the constructor, not on the wire."""
    with pytest.raises(ValueError, match="stream_url"):
        AlertClient("http://127.0.0.1:1/v1/stream", lat=LAT, lon=LON)
    with pytest.raises(ValueError, match="lat"):
        AlertClient("ws://127.0.0.1:1/v1/stream", lat=95.0, lon=LON)
    with pytest.raises(ValueError, match="not both"):
        AlertClient("ws://127.0.0.1:1/v1/stream", lat=LAT, lon=LON, region="48029")
    with pytest.raises(ValueError, match="region"):
        AlertClient("ws://127.0.0.1:1/v1/stream", region="4802")
