"""Shared test helpers: timeouts, signed requests, alert documents, clients, processes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from amber_relay.model import AlertContent, AlertRecord, Info
from amber_relay.signing import signature_header

__all__ = [
    "TIMEOUT_FACTOR",
    "Agency",
    "Child",
    "Client",
    "ServerProcess",
    "alert_doc",
    "seconds",
    "signed",
    "square",
]

TIMEOUT_FACTOR = float(os.environ.get("TESTS_TIMEOUT_FACTOR", "1"))
ROOT = Path(__file__).resolve().parent.parent


def seconds(s: float) -> float:
    """A wait bound, scaled by ``TESTS_TIMEOUT_FACTOR`` for slow machines."""
    return s * TIMEOUT_FACTOR


@dataclass(frozen=True)
class Agency:
    id: str
    secret: str


def square(lat: float, lon: float, half_deg: float) -> list[list[list[float]]]:
    """GeoJSON Polygon coordinates of a lat/lon square centred on (lat, lon)."""
    s, n, w, e = lat - half_deg, lat + half_deg, lon - half_deg, lon + half_deg
    return [[[w, s], [e, s], [e, n], [w, n], [w, s]]]


def stored_record(
    alert_id: str,
    version: int,
    *,
    centre: tuple[float, float],
    half_deg: float,
    regions: list[str],
) -> AlertRecord:
    """A stored version of a TX alert over a lat/lon square, as the feed delivers it."""
    content = AlertContent(
        id=alert_id,
        version=version,
        sent="2026-01-01T00:00:00+00:00",
        expires="2099-01-01T00:00:00+00:00",
        event="Child Abduction Emergency",
        infos=[Info(headline="h")],
    )
    ring = [(x, y) for x, y in square(*centre, half_deg)[0]]
    return AlertRecord(
        id=alert_id,
        version=version,
        agency="txdps",
        status="actual",
        expires_ts=time.time() + 3600,
        sent_ts=time.time(),
        polygons=[[ring]],
        content=content,
        regions=regions,
    )


def alert_doc(
    identifier: str,
    *,
    polygon: list[list[list[float]]] | None = None,
    circles: Sequence[dict[str, float]] = (),
    same: Sequence[str] = (),
    expires_in_s: float = 3600,
    headline: str = "AMBER Alert: test child",
    status: str = "actual",
    **extra: Any,
) -> dict[str, Any]:
    """A JSON alert as an agency would send it."""
    area: dict[str, Any] = {}
    if polygon is not None:
        area["geometry"] = {"type": "Polygon", "coordinates": polygon}
    if circles:
        area["circles"] = list(circles)
    if same:
        area["same"] = list(same)
    expires = datetime.now(UTC) + timedelta(seconds=expires_in_s)
    return {
        "identifier": identifier,
        "status": status,
        "headline": headline,
        "expires": expires.isoformat(timespec="seconds"),
        "area": area,
        **extra,
    }


async def signed(
    http: httpx.AsyncClient,
    method: str,
    path: str,
    agency: Agency,
    body: bytes | dict[str, Any] = b"",
    *,
    content_type: str | None = None,
    t: int | None = None,
) -> httpx.Response:
    """One signed agency request to the API ``http`` points at."""
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    if isinstance(body, dict) and content_type is None:
        content_type = "application/json"
    stamp = int(time.time()) if t is None else t
    headers = {
        "X-Amber-Agency": agency.id,
        "X-Amber-Signature": signature_header(agency.secret, stamp, method, path, raw),
    }
    if content_type:
        headers["Content-Type"] = content_type
    return await http.request(method, path, content=raw, headers=headers)


@dataclass
class Client:
    """A raw WebSocket client of the stream that records every frame it receives."""

    ws: ClientConnection
    frames: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        lat: float | None = None,
        lon: float | None = None,
        region: str | None = None,
        seen: Sequence[tuple[str, int]] = (),
    ) -> Client:
        """Connect, send hello, and wait for the welcome."""
        ws = await connect(url, compression=None, open_timeout=seconds(10))
        hello: dict[str, Any] = {"type": "hello", "seen": [list(s) for s in seen]}
        if region is not None:
            hello["region"] = region
        else:
            hello["lat"], hello["lon"] = lat, lon
        await ws.send(json.dumps(hello))
        client = cls(ws)
        welcome = await client.next()
        if welcome["type"] != "welcome":
            raise AssertionError(f"expected welcome, got {welcome}")
        return client

    async def next(self, timeout_s: float = 10.0) -> dict[str, Any]:
        """The next frame, waiting at most ``timeout_s`` (scaled)."""
        async with asyncio.timeout(seconds(timeout_s)):
            raw = await self.ws.recv()
        frame: dict[str, Any] = json.loads(raw)
        self.frames.append(frame)
        return frame

    async def next_of(self, kind: str, timeout_s: float = 10.0) -> dict[str, Any]:
        """The next frame of type ``kind``, skipping none: any other frame fails the test."""
        frame = await self.next(timeout_s)
        if frame["type"] != kind:
            raise AssertionError(f"expected a {kind} frame, got {frame}")
        return frame

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def close(self) -> None:
        await self.ws.close()


_LIMITED = (
    "import resource, runpy, sys; "
    "resource.setrlimit(resource.RLIMIT_NOFILE, ({nofile}, {nofile})); "
    "sys.argv[0] = 'amber-relay'; "
    "runpy.run_module('amber_relay.cli', run_name='__main__')"
)


class Child:
    """A test's child process (``proc``): stopped politely or killed, never left behind."""

    proc: subprocess.Popen[bytes]

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(seconds(10))

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not ended within 10 s."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(seconds(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(seconds(10))


class ServerProcess(Child):
    """``amber-relay <command>`` as a child process; ``ready`` is its JSON ready line."""

    def __init__(
        self, args: Sequence[str], env: dict[str, str], *, nofile: int | None = None
    ) -> None:
        """Start it; ``nofile`` lowers the child's open-file limit (RLIMIT_NOFILE) first."""
        # The developer's own AMBER_* settings must not leak into a test's process.
        base = {k: v for k, v in os.environ.items() if not k.startswith("AMBER_")}
        full_env = {**base, **env}
        launcher = ["-m", "amber_relay.cli"]
        if nofile is not None:
            launcher = ["-c", _LIMITED.format(nofile=nofile)]
        self.proc = subprocess.Popen(
            [sys.executable, *launcher, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            cwd=str(ROOT),
        )
        self.lines: list[str] = []
        self.ready: dict[str, Any] = {}
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None  # stdout=PIPE
        with self.proc.stdout:  # closed here, at EOF, by the thread that reads it
            for raw in self.proc.stdout:
                line = raw.decode(errors="replace").rstrip()
                self.lines.append(line)
                if line.startswith('{"event": "ready"'):
                    self.ready = json.loads(line)
                    self._ready.set()
        self._ready.set()

    async def wait_ready(self, timeout_s: float = 60.0) -> dict[str, Any]:
        """Wait for the ready line; fail with the process output if it exits first."""
        ok = await asyncio.to_thread(self._ready.wait, seconds(timeout_s))
        if not ok or not self.ready:
            self.stop()
            out = "\n".join(self.lines[-30:])
            raise AssertionError(f"process not ready (exit {self.proc.poll()}):\n{out}")
        return self.ready
