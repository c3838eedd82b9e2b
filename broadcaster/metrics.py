"""``GET /metrics`` and the sampler that moves a broadcaster's plain counters into it.

The stream and the hub count in plain integers where the work happens (per batch, never
a metrics call per socket); :class:`Sampler` adds the deltas to the Prometheus metrics
once a second and before each scrape. With ``PROMETHEUS_MULTIPROC_DIR`` set (``serve
--processes N``), a scrape answers the sum over every live process of the run.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import Response

from amber_relay import metrics as m

from .hub import Hub
from .stream import StreamServer

__all__ = ["Sampler", "metrics_endpoint"]

_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class Sampler:
    """Adds one process's counters to the metrics; :meth:`sample` is cheap and idempotent."""

    def __init__(self, hub: Hub, stream: StreamServer, public_states: str) -> None:
        self.hub = hub
        self.stream = stream
        self._frames: Counter[str] = Counter()
        self._hellos = self._moves = self._slow = self._limited = 0
        m.PUBLIC_STATES.labels(public_states or "all").set(1)

    def sample(self) -> None:
        s, hub = self.stream, self.hub
        m.CONNECTIONS.set(len(s.connections))
        m.ACTIVE_ALERTS.set(len(hub.alerts))
        m.HELLOS.inc(s.hellos - self._hellos)
        m.MOVES.inc(s.moves - self._moves)
        m.CLOSES.labels("slow_client").inc(s.closed_slow - self._slow)
        m.CLOSES.labels("rate_limit").inc(s.closed_rate_limited - self._limited)
        self._hellos, self._moves = s.hellos, s.moves
        self._slow, self._limited = s.closed_slow, s.closed_rate_limited
        for kind, n in hub.frames_sent.items():
            delta = n - self._frames[kind]
            if delta:
                m.FRAMES_SENT.labels(kind).inc(delta)
                self._frames[kind] = n

    async def run(self, interval_s: float = 1.0) -> None:
        """Sample every ``interval_s`` until cancelled."""
        while True:
            self.sample()
            await asyncio.sleep(interval_s)


def metrics_endpoint(sampler: Sampler) -> Callable[[Request], Awaitable[Response]]:
    """The ``/metrics`` route handler: Prometheus text format, this run's processes."""
    multiproc_dir = os.environ.get(_MULTIPROC_ENV)

    async def handler(request: Request) -> Response:
        sampler.sample()
        if multiproc_dir:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=multiproc_dir)  # type: ignore[no-untyped-call]
            data = await asyncio.to_thread(generate_latest, registry)
        else:
            data = generate_latest(REGISTRY)
        return Response(data, media_type=CONTENT_TYPE_LATEST)

    return handler
