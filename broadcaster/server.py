"""One serving process: the HTTP API and the stream server on one event loop.

``serve`` binds both ports (SO_REUSEPORT, so several processes can share them), syncs
the hub from Redis, follows the events stream, and optionally runs an arq worker in
the same loop (``amber-relay run``). When ready it calls ``on_ready`` with the URLs.
Background loops run supervised (a loop that dies is logged and restarted; /readyz
fails meanwhile). On SIGTERM/SIGINT it drains: /readyz answers 503, the stream stops
accepting and closes its sockets with 1012 in batches over ``drain_s``, then exits.
A second signal closes the remaining sockets at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.routing import Route

from amber_relay import geodata, pilot
from amber_relay.agencies import load_agencies
from amber_relay.errors import AmberError
from amber_relay.redis_clients import follower, primary
from amber_relay.settings import Settings
from amber_relay.store import Store, Submission
from workers.photos import PhotoFetcher
from workers.queue import connect, enqueue_apply
from workers.tasks import apply

from ._drain import drain
from ._edge import EdgeState, edge_protocol
from ._health import Health
from ._tasks import supervise
from ._validator import ValidatorPool
from .api import ApiContext, create_app
from .feed import flush_stats, follow
from .hub import Hub
from .metrics import Sampler, metrics_endpoint
from .reach import publish_counts
from .stream import StreamServer

__all__ = ["Endpoints", "bind", "serve"]

log = logging.getLogger("amber_relay.server")


_GC_THRESHOLDS = (50_000, 20, 10)
"""Allocations before a young collection, and the young (middle) collections before the
next generation's: see where :func:`serve` sets them."""


@dataclass(frozen=True)
class Endpoints:
    """Where a serving process listens."""

    api_url: str
    stream_url: str
    node: str


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket with SO_REUSEPORT (processes share the port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.setblocking(False)
    return sock


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class _Http(uvicorn.Server):
    """uvicorn without its own SIGTERM/SIGINT handlers: ``serve`` owns the signals.

    uvicorn's handlers would stop the API first and pass the signal on only after,
    so /readyz could not say "draining" while the stream drains.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _needs_fetch(sub: Submission) -> bool:
    # Photos behind URLs are fetched by the worker alone, so each is fetched once.
    return sub.record is not None and any(p.url for p in sub.record.pending_photos)


async def _apply_now(ctx: dict[str, Any], alert_id: str, version: int, sub: Submission) -> None:
    try:
        await apply(ctx, alert_id, version, sub)
    except Exception as exc:  # the queued job will apply it; say why this did not
        log.warning(
            "fast apply of %s v%d failed (%r); the worker will apply it",
            alert_id,
            version,
            exc,
            extra={"alert_id": alert_id, "version": version},
        )


async def _cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    # A cancellation that lands while redis-py is mid-read can be absorbed once (seen
    # with arq's poll loop after a Redis restart), so cancel again until each task ends.
    pending = set(tasks)
    for _ in range(10):
        for t in pending:
            t.cancel()
        _, pending = await asyncio.wait(pending, timeout=1)
        if not pending:
            break
    for t in tasks:
        if t.done() and not t.cancelled() and t.exception() is not None:
            log.error("task %s ended with %r", t.get_name(), t.exception())


async def serve(
    settings: Settings,
    *,
    redis_url: str | None,
    with_worker: bool = False,
    on_ready: Callable[[Endpoints], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until ``stop`` is set (or SIGTERM/SIGINT when ``stop`` is None).

    Redis is ``redis_url``, or the primary the Sentinels name when
    ``settings.redis_sentinels`` is set (then ``redis_url`` may be None).
    """
    loop = asyncio.get_running_loop()
    hurry = asyncio.Event()
    if stop is None:
        stop = asyncio.Event()
        signalled = stop

        def on_signal() -> None:
            # The first signal drains; a second one cuts the drain short.
            (hurry if signalled.is_set() else signalled).set()

        with contextlib.suppress(NotImplementedError, RuntimeError):
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, on_signal)
    # A broken agencies file is a deploy error: fail before the slow geodata load.
    agencies = load_agencies(settings.agencies_file)
    geo = await asyncio.to_thread(geodata.load)
    # Alert checks run in child processes (the county R-tree they need is built there:
    # fan-out needs no county geometry); one is loaded before this process is ready.
    checks = ValidatorPool(settings)
    try:
        public_states = pilot.parse_states(settings.public_states, geo.states)
    except ValueError as exc:
        raise AmberError(str(exc), code="bad_public_states") from None
    redis = primary(settings, redis_url)
    arq = await connect(settings, redis_url)
    store = Store(
        redis,
        settings.redis_prefix,
        retention_s=settings.retention_s,
        stream_maxlen=settings.stream_maxlen,
    )
    # The events stream may be read from a replica: the primary's load must not grow
    # with the number of broadcaster processes.
    feed_redis = follower(settings, redis_url)
    feed_store = Store(
        feed_redis,
        settings.redis_prefix,
        retention_s=settings.retention_s,
        stream_maxlen=settings.stream_maxlen,
    )
    hub = Hub(geo, cell_deg=settings.grid_deg)
    node = f"{socket.gethostname()}:{os.getpid()}"
    stream = StreamServer(hub, settings, node=node)

    fast_ctx: dict[str, Any] = {"store": store, "photos": PhotoFetcher(store, settings)}
    fast_tasks: set[asyncio.Task[None]] = set()

    async def enqueue(alert_id: str, version: int, sub: Submission, fresh: bool) -> None:
        # Durable first: the queued job is what guarantees the version is applied.
        await enqueue_apply(arq, store.keys.queue, alert_id, version)
        # Replicated next (when required): a write only the primary holds is lost if
        # it fails over now, so it must not be answered 202 (raises NotReplicated).
        await store.replicated(settings.redis_min_replicas, settings.redis_wait_timeout_s)
        if fresh and not _needs_fetch(sub):
            # Fast path: apply right here instead of waiting for the worker's poll;
            # applying is idempotent, so the worker's run of the same job is a no-op.
            task = asyncio.create_task(_apply_now(fast_ctx, alert_id, version, sub))
            fast_tasks.add(task)
            task.add_done_callback(fast_tasks.discard)

    api_sock = bind(settings.host, settings.port)
    stream_sock = bind(settings.host, settings.stream_port)
    # With port 0 the OS picks: the API must advertise the ports actually bound.
    bound = settings.replace(
        port=api_sock.getsockname()[1], stream_port=stream_sock.getsockname()[1]
    )
    synced = asyncio.Event()
    health = Health()
    sampler = Sampler(hub, stream, ",".join(sorted(public_states)))
    app = create_app(
        ApiContext(bound, store, agencies, geo, hub, enqueue, time.time, checks, health=health),
        [Route("/metrics", metrics_endpoint(sampler), methods=["GET"])],
    )
    restarts = health.task_restarts

    def supervised(name: str, run: Callable[[], Any]) -> asyncio.Task[None]:
        return asyncio.create_task(supervise(name, run, restarts=restarts), name=name)

    tasks = [
        supervised(
            "feed",
            lambda: follow(feed_store, hub, synced, health.feed, resync_s=settings.feed_resync_s),
        ),
        supervised("stats", lambda: flush_stats(store, hub, settings.stats_flush_s)),
        supervised("metrics", sampler.run),
        supervised("reach", lambda: publish_counts(store, hub, node, settings.reach_publish_s)),
    ]
    if with_worker:
        from workers.runner import run_worker

        tasks.append(supervised("worker", lambda: run_worker(settings, redis_url)))
    config = uvicorn.Config(
        app,
        http=edge_protocol(EdgeState(settings)),
        timeout_keep_alive=settings.api_keepalive_timeout_s,  # type: ignore[arg-type]
        lifespan="off",
        log_level="warning",
        # uvicorn's own logging config would give its loggers handlers of their own
        # (plain text); without it they go through the process's (AMBER_LOG_FORMAT).
        log_config=None,
        access_log=False,
        ws="none",
        timeout_graceful_shutdown=2,
    )
    http = _Http(config)
    # Serve nothing before the hub holds the active alerts: a hello or poll answered
    # from an empty hub would miss the clears of alerts that ended meanwhile. The
    # sockets already listen, so early connections wait in the kernel's backlog.
    stream_server = await loop.create_server(
        stream.protocol_factory, sock=stream_sock, start_serving=False
    )
    http_task: asyncio.Task[None] | None = None
    stream.start_sweeps()
    gc_before = gc.get_threshold()
    try:
        try:
            async with asyncio.timeout(30):
                await synced.wait()
        except TimeoutError:
            raise RuntimeError(
                "could not load the active alerts from Redis within 30 s (see the log)"
            ) from None
        await checks.start()
        # Geodata, the app and the active alerts live as long as the process: move them
        # out of the cyclic GC's generations so a full collection (which stops the event
        # loop, fan-out included) does not walk them again and again.
        gc.freeze()
        # Decoding a whole state's record (Alaska: 170,000 vertices, half a million lists
        # and floats) triggered ~700 young collections at the default threshold of 700
        # allocations: 158 ms on the loop instead of 45. The hot paths make few cycles.
        gc.set_threshold(*_GC_THRESHOLDS)
        await stream_server.start_serving()
        http_task = asyncio.create_task(http.serve(sockets=[api_sock]), name="http")
        api_port = api_sock.getsockname()[1]
        stream_port = stream_sock.getsockname()[1]
        endpoints = Endpoints(
            api_url=f"http://{_url_host(settings.host)}:{api_port}",
            stream_url=f"ws://{_url_host(settings.host)}:{stream_port}/v1/stream",
            node=node,
        )
        if on_ready is not None:
            on_ready(endpoints)
        await stop.wait()
        # Drain: out of the load balancer's rotation (/readyz), no new sockets, the
        # open ones closed in batches so they reconnect to the other replicas gradually.
        health.draining = True
        stream_server.close()
        closed = await drain(stream, settings.drain_s, until=hurry)
        log.info("drained %d socket(s) over up to %g s", closed, settings.drain_s)
    finally:
        gc.set_threshold(*gc_before)  # for an embedding process (the tests run serve in theirs)
        health.draining = True
        stream.stop_sweeps()
        stream_server.close()
        stream.close_all(1012, "server restarting: reconnect")
        http.should_exit = True
        # Cancelling the worker's task stops it between jobs or abandons the running
        # one; arq re-runs an abandoned job once its in-progress key expires.
        await _cancel_all(tasks)
        if http_task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(http_task, 5)
        # A fast apply still running holds a Redis connection: end it before closing the
        # pool (the queued job applies that version anyway).
        if fast_tasks:
            await _cancel_all(list(fast_tasks))
        await checks.close()
        await redis.aclose()
        await feed_redis.aclose()
        await arq.aclose()
