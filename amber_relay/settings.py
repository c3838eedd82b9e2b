"""One frozen settings object, built once at start from ``AMBER_*`` env and flags.

Nothing in the project reads the environment at import time: :func:`Settings.from_env`
is called by the CLI (or a test) and the result is passed down explicitly. Every limit
has a finite default and its unit in its name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["Settings"]

_PREFIX = "AMBER_"


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Configuration for every amber-relay process.

    Each field may be set from the environment as ``AMBER_<FIELD NAME IN CAPS>``
    (``AMBER_REDIS_URL``, ``AMBER_MAX_BODY_BYTES``...) or by keyword override.
    """

    # Wiring
    redis_url: str | None = None
    """Redis to use; ``None`` means "start a private redis-server" (``amber-relay run`` only)."""
    redis_prefix: str = "amber:"
    """Prefix of every key amber-relay writes, so one Redis can host several deployments."""
    redis_sentinels: str | None = None
    """Redis Sentinels as ``host:port,host:port``; when set, every process finds the
    primary (and replicas) through them instead of ``redis_url``."""
    redis_sentinel_master: str = "amber"
    """Name of the monitored primary (``sentinel monitor <name> ...``)."""
    redis_min_replicas: int = 0
    """Replicas that must acknowledge an alert's write (Redis WAIT) before the hook
    answers 202; otherwise 503 (the retry is idempotent). 0 = the primary alone."""
    redis_wait_timeout_s: float = 1.0
    """How long the hook waits for those acknowledgements."""
    redis_follow_replica: bool = False
    """Broadcasters read the events stream and the active set from a replica (through
    Sentinel), so the primary's load does not grow with the number of broadcasters."""
    agencies_file: str | None = None
    """TOML file of agencies (secret, jurisdiction); ``None`` means no agency may post."""
    host: str = "127.0.0.1"
    port: int = 8000
    """HTTP API port (agency hook, poll fallback, media, demo page)."""
    stream_port: int = 8001
    """WebSocket port serving ``/v1/stream``."""
    public_base_url: str | None = None
    """Public base URL of the API (the load balancer), for absolute photo links;
    ``None`` gives links relative to the API (``/media/<sha256>``)."""
    public_stream_url: str | None = None
    """The stream URL ``/v1/config`` names (``wss://alerts.example.org/v1/stream``);
    ``None``: the host of ``public_base_url`` (else the bind address) and
    ``stream_port``. Never taken from a request's Host header."""
    processes: int = 1
    """Broadcaster processes sharing the ports with SO_REUSEPORT (``serve --processes``)."""
    log_format: str = "text"
    """``text`` or ``json`` (one object per line, with alert_id and version on lines
    about an alert)."""

    public_states: str = ""
    """Pilot gating: state FIPS codes (``48,40``) whose alerts reach the public; an
    alert touching none of them is stored and reported as not public. Empty = all."""
    restart_backoff_max_s: float = 30.0
    """``serve --processes``: longest wait before restarting a crashed child (the wait
    doubles from 0.5 s at each crash in a row)."""
    restart_give_up: int = 5
    """``serve --processes`` exits non-zero after this many children in a row crash
    within ``restart_fast_s`` of starting (a broken deploy, not a transient fault)."""
    restart_fast_s: float = 30.0
    """A child that exits sooner than this after starting counts as a fast failure."""

    # Health and shutdown
    drain_s: float = 10.0
    """On SIGTERM, close the stream's sockets (1012) in batches spread over this many
    seconds, so a replica's clients do not all reconnect elsewhere in the same second."""
    feed_resync_s: float = 600.0
    """The feed re-reads the whole active set this often even when nothing failed
    (heals any unnoticed divergence; forgets end markers past retention)."""
    feed_max_lag_s: float = 5.0
    """``/readyz`` fails when the feed last reached the events stream's head longer
    ago than this (the feed blocks 2 s per read when idle)."""

    # Agency hook limits
    max_body_bytes: int = 4 * 1024 * 1024
    max_vertices: int = 20_000
    """Most vertices an alert's polygons may carry in all (state outlines included)."""
    max_polygons: int = 100
    max_circles: int = 100
    max_same_codes: int = 500
    max_radius_km: float = 1000.0
    min_radius_km: float = 0.01
    """Smallest circle accepted: below ~10 m a circle reaches no phone and its polygon
    degenerates (a radius of 1e-196 km has no area at all)."""
    max_edge_pairs: int = 1_000_000
    """Most pairs of an alert's polygon edges whose bounding boxes overlap (all parts
    together): what checking, repairing and joining them costs grows with it (a sun of
    2,000 thin spikes has ~1 M). Beyond it the area is refused (422 too_intricate)."""
    max_line_crossings: int = 1000
    """Most edges of an alert's polygons one line of latitude may cross: matching a point
    costs every broadcaster about that many segment tests (a 20,000-vertex comb has
    10,000). Beyond it the area is refused (422 too_intricate)."""
    max_repair_crossings: int = 10_000
    """Most edge crossings an area may have, all polygons together (within a polygon
    touching counts; between polygons only proper crossings, so shared borders are
    free): what repairing and joining cost grows with it (a 141-point star has ~9,700).
    Beyond it 422 self_intersection names the first one."""
    ingest_timeout_s: float = 5.0
    """Bound on checking one alert in a child process, waiting for a free child
    included; beyond it the child is killed (and replaced) and the hook answers 503
    ingest_busy with Retry-After."""
    ingest_max_concurrent: int = 2
    """Alerts checked at once per serving process, each in a child process of its own
    (at most this many children; each check within ~1 CPU-second and 256 MB)."""
    ingest_memory_limit_bytes: int = 1024 * 1024 * 1024
    """Address space (RLIMIT_AS) of each alert-checking child process, its interpreter
    and the mapped geodata (~120 MB) included; a check that needs more is refused
    (422 too_intricate) and the child replaced."""
    max_expires_s: int = 7 * 24 * 3600
    """How far in the future an alert may expire."""
    cap_default_lifetime_s: int = 24 * 3600
    """How long a CAP Alert or Update without ``<expires>`` lasts after its ``sent``
    (CAP leaves it to the recipient; 24 h is how long WEA phones keep an alert). The
    answer warns; 0 refuses such messages (422 ``cap_missing_field``), as IPAWS does."""
    signature_tolerance_s: int = 300
    max_clock_skew_s: int = 300
    """How far a message's ``sent`` may lie ahead of this server's clock; more is refused
    (422 ``sent_in_future``): it is usually a local time written with the wrong offset."""
    accepted_event_codes: tuple[str, ...] = ("CAE",)
    """SAME event codes this deployment publishes (``CAE`` = Child Abduction Emergency);
    ``("*",)`` accepts every code. From the environment: comma-separated. Test and
    demonstration events (RMT, RWT, DMO, NPT) are never public, whatever this says."""
    jurisdiction_margin_km: float = 22.2
    """How far past its states' outline (coasts, borders) an agency's area may reach:
    12 nautical miles, the territorial sea. See docs/geodata.md."""
    same_widen_m: float = 100.0
    """How far (metres) an area given as SAME county codes is widened past the county's
    outline, so that everyone inside the county is reached (docs/geodata.md: with the
    shipped outlines, any value from 31 to 111 m keeps the promise of covering 100 % of
    the county and reaching at most 161 m past it)."""
    api_body_budget_bytes: int = 64 * 1024 * 1024
    """Most request-body bytes one process holds in flight, all uploads together; a body
    that would pass it is answered 503 with Retry-After instead of being buffered."""

    # HTTP edge of the API port
    api_header_timeout_s: float = 10.0
    """A request's line and headers must arrive within this (from the connection or the
    previous response); else 408 and close."""
    api_body_timeout_s: float = 30.0
    """A request body must arrive whole within this after its headers; else 408 and close."""
    api_keepalive_timeout_s: float = 5.0
    """An idle keep-alive connection is closed after this."""
    api_max_connections: int = 2048
    """Most open API connections per process; never more than a quarter of the process's
    open-file limit, so the stream always keeps file descriptors to accept clients."""
    api_max_connections_per_address: int = 128
    """Most open API connections per peer address (the TCP peer: behind a load balancer
    that is the balancer; 0 turns the cap off)."""
    api_linger_s: float = 5.0
    """After an early answer (413, 401) to a request whose body is still coming, read
    and discard it this long before closing, so the client can read the answer."""
    api_linger_max_bytes: int = 64 * 1024 * 1024
    """Most bytes discarded while lingering, per connection."""

    # Photos
    photo_max_bytes: int = 5 * 1024 * 1024
    photo_fetch_timeout_s: float = 5.0
    photo_max_count: int = 8
    photo_max_pixels: int = 4096 * 4096
    photo_allow_private_hosts: bool = False
    """Let the worker fetch photos from private/loopback addresses (tests, closed networks)."""

    # Worker
    worker_poll_delay_s: float = 0.05
    """arq queue poll interval. Not on the hook-to-frame path: the serving process
    applies a new version itself right after queueing it (the queued job then finds
    it applied); the worker's poll matters for alerts with photo URLs, for versions
    a crashed server did not apply, and for the idle CPU (5 ms polls cost ~13 % of a
    core here)."""
    worker_job_timeout_s: float = 15.0
    """Longest run of a job (photo fetches included, each bounded by
    ``photo_fetch_timeout_s``). A job cut short by a killed worker runs again this
    + 10 s after it started (arq's in-progress lock)."""
    worker_metrics_port: int = 0
    """``amber-relay worker`` serves Prometheus ``/metrics`` on this port (0 = off);
    serving processes answer ``/metrics`` on their API port."""
    expire_interval_s: int = 1
    """Seconds between expiry sweeps (an arq cron job)."""
    retention_s: int = 30 * 24 * 3600
    """How long ended alerts' records, versions and figures are kept."""

    # Stream server
    hello_timeout_s: float = 5.0
    ping_interval_s: float = 20.0
    """Keepalive sweep: a socket silent for two sweeps is closed."""
    write_limit_bytes: int = 256 * 1024
    """Per-connection write buffer cap; a client behind by more is closed as slow."""
    max_interrupt_bytes: int = 64 * 1024
    """Largest interrupt frame an alert may make (all languages, photos' links): a hello
    answer with several alerts must fit ``write_limit_bytes``, or a client inside would be
    dropped as slow on every reconnect."""
    max_frame_bytes: int = 64 * 1024
    """Largest client frame accepted: a hello with ``max_seen`` ids of 200 characters fits."""
    max_seen: int = 256
    move_min_interval_s: float = 1.0
    """Moves faster than this are rate-limited: one per interval is applied."""
    stream_move_rate_per_s: float = 5.0
    """Most ``move`` frames per second one socket may send (after a burst of
    ``stream_rate_burst``); more closes it with 1008. Only one per
    ``move_min_interval_s`` is applied either way."""
    stream_ack_rate_per_s: float = 10.0
    """Most ``ack`` frames per second one socket may send (after the burst); more: 1008."""
    stream_ping_rate_per_s: float = 1.0
    """Most WebSocket ping and pong frames per second one socket may send (after the
    burst); more: 1008. The server pings every ``ping_interval_s``."""
    stream_rate_burst: int = 20
    """Frames of one kind (move, ack, ping) a socket may send back to back before its
    per-second rate applies (a token bucket of this size per kind)."""
    stream_max_fragments: int = 64
    """Most WebSocket frames one fragmented text message may be split into (the
    reassembled message is still bounded by ``max_frame_bytes``); more: 1008."""
    stream_max_connections_per_address: int = 1024
    """Most open stream connections from one source address, per serving process;
    more are refused with HTTP 429; 0: no cap. Behind a load balancer every connection
    comes from the balancer's address: raise this to the process's capacity (or 0)
    there and cap per client at the balancer."""
    grid_deg: float = 0.125
    """Cell size of the broadcaster's bucket index of sockets."""
    stream_maxlen: int = 10_000
    stats_flush_s: float = 1.0
    poll_max_age_s: int = 10
    """Cache-Control max-age of the HTTP poll fallback."""

    # Agency console (preview reach, listings, map outlines)
    reach_publish_s: float = 2.0
    """Seconds between a broadcaster's publications of its per-cell connection counts
    (coarse grid cells and county tags, never locations) to Redis for preview reach;
    a snapshot lives for three intervals, so a dead process drops out."""
    agency_list_max: int = 100
    """Most alerts ``GET /v1/alerts?state=`` lists (newest first)."""
    outline_simplify_deg: float = 0.005
    """Tolerance (degrees) of the county outlines served to the console map; state
    outlines use twice it. Display only: matching always uses the full outlines."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Settings:
        """Build settings from ``AMBER_*`` variables, then apply keyword overrides.

        Raises:
            ValueError: a variable does not parse as its field's type, or names no field.
        """
        values: dict[str, Any] = {}
        known = {f.name: f for f in fields(cls)}
        for key, raw in environ.items():
            if not key.startswith(_PREFIX):
                continue
            name = key[len(_PREFIX) :].lower()
            field = known.get(name)
            if field is None:
                # A typo such as AMBER_REDIS_UR must not silently fall back to a default.
                raise ValueError(f"{key} names no setting")
            values[name] = _cast(key, raw, str(field.type))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def _cast(key: str, raw: str, type_name: str) -> Any:
    base = type_name.replace(" | None", "")
    if base == "tuple[str, ...]":
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    try:
        if base == "int":
            return int(raw)
        if base == "float":
            return float(raw)
        if base == "bool":
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
    except ValueError:
        raise ValueError(f"{key}={raw!r} is not a valid {base}") from None
    return raw
