"""Prometheus metrics of every amber-relay process (prometheus-client).

Defined once per process, in the default registry. Under ``serve --processes N`` the
supervisor gives its children a per-run directory in ``PROMETHEUS_MULTIPROC_DIR``
(prometheus-client's own variable, read when it is first imported), so each child
writes its values to files there and ``/metrics`` on any child sums every live
child's: the scrape is the same whichever process the kernel hands it to.

Hot paths never touch these objects per socket: broadcasters keep plain integers and
:mod:`broadcaster.metrics` adds their deltas here about once a second.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "ACTIVE_ALERTS",
    "CLOSES",
    "CONNECTIONS",
    "EVENT_LAG",
    "FANOUT_SECONDS",
    "FRAMES_SENT",
    "HELLOS",
    "HOOK_ANSWERS",
    "JOB_LATENCY",
    "JOB_RETRIES",
    "MOVES",
    "PUBLIC_STATES",
    "REDIS_ERRORS",
]

CONNECTIONS = Gauge(
    "amber_connections_open",
    "Open stream sockets (hello'd or not).",
    multiprocess_mode="livesum",
)
HELLOS = Counter("amber_hellos", "Hellos accepted (clients registered).")
MOVES = Counter("amber_moves", "Moves applied (after rate limiting).")
FRAMES_SENT = Counter(
    "amber_frames_sent",
    "Frames handed to sockets, by type (interrupt, clear, welcome, ping).",
    ["type"],
)
CLOSES = Counter(
    "amber_closes",
    "Sockets closed by the server, by reason (slow_client, rate_limit).",
    ["reason"],
)
FANOUT_SECONDS = Histogram(
    "amber_fanout_seconds",
    "Time to hand one alert version to every matching socket of a process.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
HOOK_ANSWERS = Counter(
    "amber_hook_answers",
    "Answers of the agency hook, by HTTP status and problem code (accepted for 2xx).",
    ["status", "code"],
)
JOB_LATENCY = Histogram(
    "amber_job_latency_seconds",
    "From the hook receiving a version to it being applied, by runner (server, worker).",
    ["runner"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
JOB_RETRIES = Counter("amber_job_retries", "Apply jobs run again (arq job_try > 1).")
EVENT_LAG = Gauge(
    "amber_event_stream_lag_seconds",
    "Age of the newest events-stream entry when this process read it (0: caught up).",
    multiprocess_mode="liveall",
)
ACTIVE_ALERTS = Gauge(
    "amber_active_alerts",
    "Public active alerts in the broadcaster's mirror.",
    multiprocess_mode="livemax",
)
REDIS_ERRORS = Counter(
    "amber_redis_errors",
    "Redis failures, by where they happened (hook, feed, stats, worker, readyz).",
    ["where"],
)
PUBLIC_STATES = Gauge(
    "amber_public_states",
    "Pilot gating (AMBER_PUBLIC_STATES): 1 for the state list in force ('all' = none).",
    ["states"],
    multiprocess_mode="livemax",
)
