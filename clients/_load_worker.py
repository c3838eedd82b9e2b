"""One load-generator process: opens its share of the clients and timestamps their frames.

Run as ``python -m clients._load_worker``; it is driven by :mod:`clients.loadtest`
over pipes, in JSON lines:

- stdin, first line: the job (server address, source address, client points, the
  alert ids to watch); then commands ``{"cmd": "report"}`` and ``{"cmd": "quit"}``.
  EOF on stdin means the parent is gone: close everything and exit.
- stdout: ``progress`` while connecting, ``connected`` when done, ``got`` once every
  expected client has a watched alert, ``report`` when the per-client results file
  is written.

Frame receive times are ``time.monotonic()``: CLOCK_MONOTONIC is one system-wide
clock on Linux, so they compare directly with the parent's time of the hook.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import sys
import time
from collections import Counter
from typing import Any

from ._load_proto import OPEN, LoadClient, Sink, client_frame, handshake_request

__all__ = ["Pool", "main"]

# Linux: bind() takes an address only and the port is chosen at connect(), per
# 4-tuple, so one source address holds ~28k sockets per server port and old
# TIME_WAIT entries towards another port do not get in the way.
_IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
# Close with a reset: the kernel keeps no TIME_WAIT entry per socket after a run.
_LINGER_RESET = struct.pack("ii", 1, 0)
# A stalled client's receive window: small so the server's buffer fills soon.
_STALLED_RCVBUF = 4096
# Where an interrupt's alert id is looked for: {"type":"interrupt","alert":{"id":"...
_HEAD_BYTES = 512
_ID_KEY = b'"id":"'


def emit(event: str, **fields: Any) -> None:
    """One JSON line to the parent."""
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


class Pool(Sink):
    """The clients of this process and what they received."""

    def __init__(self, job: dict[str, Any]) -> None:
        self.request = handshake_request(job["host"], job["port"], job["path"])
        points: list[list[float]] = job["points"]
        self.n = n = len(points)
        self.hellos = [
            client_frame(0x1, json.dumps({"type": "hello", "lat": p[0], "lon": p[1]}).encode())
            for p in points
        ]
        inside: list[int] = job["inside"]
        self.stalled = set(job.get("stalled", []))
        self.idents: list[str] = job["idents"]
        self.ident_index = {ident.encode(): k for k, ident in enumerate(self.idents)}
        self.expected: list[bytes] = []
        for e in job["expect"]:
            row = bytearray([1]) * n if e == "all" else bytearray(1 if v else 0 for v in inside)
            for i in self.stalled:
                row[i] = 0  # a client that never reads cannot be expected to have anything
            self.expected.append(bytes(row))
        self.times = [[0.0] * n for _ in self.idents]
        self.sizes = [0] * len(self.idents)
        self.remaining = [0] * len(self.idents)
        self.armed = False
        self.clients: list[LoadClient | None] = [None] * n
        self.welcomed_flags = bytearray(n)
        self.closed_flags = bytearray(n)
        self.nodes: Counter[str] = Counter()
        self.connected = 0
        self.failed = 0
        self.errors: Counter[str] = Counter()
        self.t_start = 0.0
        self.t_end = 0.0

    # -- Sink --------------------------------------------------------------------

    def welcomed(self, client: LoadClient, node: str) -> None:
        self.connected += 1
        self.welcomed_flags[client.idx] = 1
        self.nodes[node] += 1
        self.t_end = time.monotonic()

    def text(self, idx: int, payload: bytes, now: float) -> None:
        # The alert id is the first field of an interrupt's alert (compact JSON, the
        # same in the baselines): read it from the head instead of scanning the frame
        # once per watched alert, which would grow with the alert count and the size.
        head = payload[:_HEAD_BYTES]
        if b'"interrupt"' not in head:
            return
        start = head.find(_ID_KEY)
        if start < 0:
            return
        start += len(_ID_KEY)
        alert_id = head[start : head.find(b'"', start)]
        # amber-relay's ids are "<agency>/<identifier>"; the raw baselines send the bare one.
        k = self.ident_index.get(alert_id[alert_id.rfind(b"/") + 1 :])
        if k is None:
            return
        row = self.times[k]
        if row[idx] == 0.0:
            row[idx] = now
            if not self.sizes[k]:
                self.sizes[k] = len(payload)
            if self.armed and self.expected[k][idx]:
                self._tick(k)

    def lost(self, client: LoadClient) -> None:
        i = client.idx
        self.closed_flags[i] = 1
        if self.armed:
            for k in range(len(self.idents)):
                # This client can no longer get what it was still waiting for.
                if self.expected[k][i] and self.times[k][i] == 0.0:
                    self._tick(k)

    # -- bookkeeping -------------------------------------------------------------

    def _tick(self, k: int) -> None:
        self.remaining[k] -= 1
        if self.remaining[k] == 0:
            emit("got", ident=k)

    def arm(self) -> None:
        """Start counting down each watched alert's expected clients still open."""
        for k, row in enumerate(self.expected):
            self.remaining[k] = sum(
                1
                for i in range(self.n)
                if row[i]
                and self.welcomed_flags[i]
                and not self.closed_flags[i]
                and self.times[k][i] == 0.0
            )
        self.armed = True
        for k, left in enumerate(self.remaining):
            if left == 0:
                emit("got", ident=k)

    async def check_stalled(self, timeout_s: float = 2.0) -> None:
        """Find which stalled clients the server closed (see LoadClient.probe)."""
        waiting = [
            c
            for i in self.stalled
            if (c := self.clients[i]) is not None and not self.closed_flags[i]
        ]
        for c in waiting:
            c.probe()
        deadline = time.monotonic() + timeout_s
        while waiting and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # the reset comes back within a loopback round trip
            for c in [c for c in waiting if c.peer_closed()]:
                self.closed_flags[c.idx] = 1
                waiting.remove(c)

    def report(self) -> dict[str, Any]:
        """Per-client results (0.0 in ``times`` means not received)."""
        return {
            "welcomed": list(self.welcomed_flags),
            "closed": list(self.closed_flags),
            "times": self.times,
            "sizes": self.sizes,
        }

    def abort_all(self) -> None:
        for c in self.clients:
            if c is not None:
                c.abort()


def _write_json(path: str, data: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f)


async def connect_all(pool: Pool, job: dict[str, Any]) -> None:
    """Open every client, ``concurrency`` at a time; failures are counted, not retried."""
    loop = asyncio.get_running_loop()
    addr = (job["host"], job["port"])
    source: str = job["source"]
    timeout_s = float(job["connect_timeout_s"])
    todo = iter(range(pool.n))

    async def one(i: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            sock.setsockopt(socket.IPPROTO_IP, _IP_BIND_ADDRESS_NO_PORT, 1)
            if i in pool.stalled:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _STALLED_RCVBUF)
            sock.bind((source, 0))
            sock.setblocking(False)
            await loop.sock_connect(sock, addr)
        except BaseException:
            sock.close()
            raise
        waiter: asyncio.Future[None] = loop.create_future()
        client = LoadClient(pool, i, pool.hellos[i], waiter)
        pool.clients[i] = client
        await loop.create_connection(lambda: client, sock=sock)
        await waiter
        if i in pool.stalled:
            client.stall()

    async def runner() -> None:
        for i in todo:
            try:
                async with asyncio.timeout(timeout_s):
                    await one(i)
            except Exception as exc:  # any failure of one client is counted, never fatal
                pool.failed += 1
                pool.errors[f"{type(exc).__name__}: {exc}"[:200]] += 1
                client = pool.clients[i]
                if client is not None and client.state != OPEN:
                    client.abort()
            pool.hellos[i] = b""  # sent; free it

    async def progress() -> None:
        while True:
            await asyncio.sleep(0.25)
            emit("progress", connected=pool.connected, failed=pool.failed)

    pool.t_start = time.monotonic()
    ticker = asyncio.create_task(progress())
    try:
        await asyncio.gather(*(runner() for _ in range(max(1, int(job["concurrency"])))))
    finally:
        ticker.cancel()


async def serve_job() -> None:
    """Read the job, connect, then answer the parent's commands until quit or EOF."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=256 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    line = await reader.readline()
    if not line:
        return
    job: dict[str, Any] = json.loads(line)
    pool = Pool(job)
    try:
        await connect_all(pool, job)
        emit(
            "connected",
            connected=pool.connected,
            failed=pool.failed,
            t_start=pool.t_start,
            t_end=pool.t_end,
            nodes=dict(pool.nodes),
            errors=dict(pool.errors.most_common(5)),
        )
        pool.arm()
        while True:
            line = await reader.readline()
            if not line:
                return
            cmd = json.loads(line).get("cmd")
            if cmd == "report":
                await pool.check_stalled()
                await asyncio.to_thread(_write_json, job["report"], pool.report())
                emit("report", path=job["report"])
            elif cmd == "quit":
                return
    finally:
        pool.abort_all()


def main() -> None:
    """Entry point of a load process (uvloop when available)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(serve_job())
    else:
        uvloop.run(serve_job())


if __name__ == "__main__":
    main()
