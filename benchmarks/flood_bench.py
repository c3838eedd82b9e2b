"""What flooding clients cost the stream server: CPU of one process, real sockets.

A stream server (``StreamServer`` over a ``Hub`` with the shipped geodata, no Redis)
runs in a child process; N clients (default 50) connect over loopback, say hello,
then each sends one kind of frame as fast as TCP takes it:

- ``move``, ``ack``, ``ping``: a flood of that kind. With per-socket rates, the
  server closes each flooder (1008) after its burst; with ``--reconnect`` (the
  default) the client connects again at once, so the figure includes handshakes.
- ``at-limit``: each client sends moves, acks and pings just under the default
  rates for the whole run: the most a socket can cost without being closed.

The server's CPU time (``/proc/<pid>/stat``) over the run is printed as a share of
one core, with the frames sent and the server's closes. Usage::

    python benchmarks/flood_bench.py [--clients 50] [--seconds 5] [--mode all]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import time
from typing import Any

_HELLO = json.dumps({"type": "hello", "lat": 29.42, "lon": -98.49}).encode()
_MOVE = json.dumps({"type": "move", "lat": 29.43, "lon": -98.48}).encode()
_ACK = json.dumps({"type": "ack", "id": "NONE", "version": 1, "event": "shown"}).encode()
_REQUEST = (
    b"GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: YW1iZXItcmVsYXktbG9hZA==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)


def masked(payload: bytes, opcode: int = 0x1) -> bytes:
    """A client frame with a zero mask (what the load generator sends)."""
    n = len(payload)
    head = bytes([0x80 | opcode, 0x80 | n]) if n < 126 else bytes([0x80 | opcode, 0xFE])
    if n >= 126:
        head += n.to_bytes(2, "big")
    return head + b"\0\0\0\0" + payload


def _serve(port_out: Any, overrides: dict[str, Any]) -> None:
    """Child process: one stream server on 127.0.0.1, forever."""
    import uvloop

    from amber_relay import geodata
    from amber_relay.settings import Settings
    from broadcaster.hub import Hub
    from broadcaster.stream import StreamServer

    async def main() -> None:
        geo = geodata.load()
        known = {k: v for k, v in overrides.items() if hasattr(Settings(), k)}
        stream = StreamServer(Hub(geo, cell_deg=0.125), Settings(**known), node="bench:1")
        server = await asyncio.get_running_loop().create_server(
            stream.protocol_factory, "127.0.0.1", 0, backlog=4096
        )
        stream.start_sweeps()
        port_out.send(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    uvloop.run(main())


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Stats:
    def __init__(self) -> None:
        self.frames = 0
        self.connections = 0
        self.closed_by_server = 0


async def _session(port: int, blob: bytes, per_blob: int, pace_s: float, stats: Stats) -> bool:
    """One connection: handshake, hello, then ``blob`` again and again (every ``pace_s``
    seconds, or as fast as TCP takes it when 0). True when the server closed it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    stats.connections += 1
    try:
        writer.write(_REQUEST + masked(_HELLO))
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            return True  # refused (429): counted as closed, reconnect

        async def drain_input() -> None:
            while await reader.read(65536):
                pass

        closed = asyncio.ensure_future(drain_input())
        while not closed.done():
            writer.write(blob)
            stats.frames += per_blob
            # a flooder that notices the server's close (it stops reading our bytes,
            # so drain() may never return) and reconnects at once: the worst case
            sent = asyncio.ensure_future(writer.drain())
            await asyncio.wait({sent, closed}, return_when=asyncio.FIRST_COMPLETED)
            if not sent.done():
                sent.cancel()
                break
            if pace_s:
                await asyncio.sleep(pace_s)
        stats.closed_by_server += 1
        return True
    except (ConnectionError, asyncio.IncompleteReadError):
        stats.closed_by_server += 1
        return True
    finally:
        writer.close()


async def _client(port: int, mode: str, reconnect: bool, until: float, stats: Stats) -> None:
    if mode == "at-limit":
        # just under the defaults (5 moves, 10 acks, 1 ping per second), once a second
        blob = masked(_MOVE) * 4 + masked(_ACK) * 9 + masked(b"", 0x9)
        pace, per_blob = 1.0, 14
    else:
        one = {"move": masked(_MOVE), "ack": masked(_ACK), "ping": masked(b"", 0x9)}[mode]
        per_blob = 200
        blob, pace = one * per_blob, 0.0
    while time.monotonic() < until:
        task = asyncio.ensure_future(_session(port, blob, per_blob, pace, stats))
        done, _ = await asyncio.wait({task}, timeout=max(0.0, until - time.monotonic()))
        if not done:
            task.cancel()
            return
        if not reconnect:
            await asyncio.sleep(max(0.0, until - time.monotonic()))
            return


async def run_mode(pid: int, port: int, mode: str, n: int, secs: float, reconnect: bool) -> str:
    stats = Stats()
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    until = t0 + secs
    await asyncio.gather(*(_client(port, mode, reconnect, until, stats) for _ in range(n)))
    cpu = cpu_seconds(pid) - cpu0
    wall = time.monotonic() - t0
    return (
        f"{mode:>9} ({'reconnecting' if reconnect else 'no reconnect'}): "
        f"server CPU {100 * cpu / wall:5.1f} % of a core; frames sent {stats.frames:,} "
        f"({stats.frames / wall:,.0f}/s); connections {stats.connections:,} "
        f"({1e3 * cpu / max(1, stats.connections):.2f} ms of server CPU each), "
        f"closed by the server {stats.closed_by_server:,}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--mode", default="all", help="move, ack, ping, at-limit or all")
    p.add_argument("--no-reconnect", action="store_true")
    p.add_argument(
        "--cap",
        type=int,
        default=10**6,
        help="AMBER_STREAM_MAX_CONNECTIONS_PER_ADDRESS of the server (default: lifted)",
    )
    args = p.parse_args()
    ctx = mp.get_context("spawn")
    modes = ["move", "ack", "ping", "at-limit"] if args.mode == "all" else [args.mode]
    for mode in modes:
        # a fresh server per mode; all clients come from 127.0.0.1, so by default
        # the per-address cap is lifted (--cap puts it back)
        port_in, port_out = ctx.Pipe(duplex=False)
        child = ctx.Process(
            target=_serve, args=(port_out, {"stream_max_connections_per_address": args.cap})
        )
        child.start()
        try:
            port = port_in.recv()
            assert child.pid is not None
            reconnect = not args.no_reconnect and mode != "at-limit"
            line = asyncio.run(
                run_mode(child.pid, port, mode, args.clients, args.seconds, reconnect)
            )
            print(line, flush=True)
        finally:
            child.terminate()
            child.join(10)


if __name__ == "__main__":
    main()
