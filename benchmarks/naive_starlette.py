"""The naive baseline: Starlette on uvicorn, broadcasting with ``await ws.send_text`` in a loop.

What a first version of a broadcaster usually looks like: a WebSocket endpoint that
accepts, reads the hello, answers a welcome and keeps the socket in a set, and a
``POST /publish`` route that answers 202 and then, in a background task, awaits
``send_text`` for each socket in turn. uvicorn runs with its defaults (uvloop, its
``auto`` WebSocket implementation) and one worker.

Usage::

    python benchmarks/naive_starlette.py [--host 127.0.0.1] [--port 0] [--exit-on-stdin-eof]

Prints the same JSON ready line as ``benchmarks/raw_floor.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

# Run as a script (python benchmarks/naive_starlette.py): make the repository importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.raw_floor import listen, parse_args, stdin_eof

WELCOME = json.dumps({"type": "welcome", "node": f"naive:{os.getpid()}"})
clients: set[WebSocket] = set()


async def stream(ws: WebSocket) -> None:
    """Accept, read the hello, answer welcome, then hold the socket until it closes."""
    await ws.accept()
    try:
        await ws.receive_text()
        await ws.send_text(WELCOME)
        clients.add(ws)
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                break
    except WebSocketDisconnect:
        pass
    finally:
        clients.discard(ws)


async def broadcast(text: str) -> None:
    """The naive fan-out: one awaited send per socket, in turn."""
    for ws in list(clients):
        try:
            await ws.send_text(text)
        except Exception:  # a closed socket must not stop the loop
            clients.discard(ws)


async def publish(request: Request) -> Response:
    """202 at once; the broadcast runs after the response, as a background task."""
    text = (await request.body()).decode()
    return Response(status_code=202, background=BackgroundTask(broadcast, text))


app = Starlette(
    routes=[Route("/publish", publish, methods=["POST"]), WebSocketRoute("/v1/stream", stream)]
)


async def main(args: argparse.Namespace) -> None:
    """Serve on a pre-bound socket until stdin closes or the process is signalled."""
    sock = listen(args.host, args.port)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    ready = {
        "event": "ready",
        "api_url": f"http://{args.host}:{port}",
        "stream_url": f"ws://{args.host}:{port}/v1/stream",
        "node": f"naive:{os.getpid()}",
    }
    print(json.dumps(ready), flush=True)
    if args.exit_on_stdin_eof:
        await stdin_eof()
        server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await task


if __name__ == "__main__":
    import uvloop

    try:
        uvloop.run(main(parse_args()))
    except KeyboardInterrupt:
        pass
