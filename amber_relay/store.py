"""Redis layout and the atomic operations on it (the only module that knows key names).

Keys (``P`` = ``settings.redis_prefix``; lifetimes in docs/operations.md)::

    P sub:<idempotency key>      hash: the answer given to a submission (id, version, status)
    P alert:<id>                 hash: latest (assigned version), applied, state, agency, cancelled
    P alert:<id>:v<n>            bytes: Submission n (msgpack), every version kept
    P keys:<id>                  set: the alert's other keys (idempotency answers, CAP links)
    P uses:<id>                  set: sha256 of the photos the alert's published versions show
    P active                     hash: id -> AlertRecord (msgpack) of each public active alert
    P ended                      hash: id -> "cancelled" | "expired"
    P ended_at                   zset: id scored by when it ended (sweeps ``ended``)
    P expiries                   zset: id scored by expiry (unix seconds)
    P events                     stream: {"e": Event (msgpack)} for broadcasters
    P stats:<id>                 hash: "<version>:<figure>" -> count
    P nonce:<agency>/<digest>    string: a used signature (replay cache, per agency)
    P cap:<agency>/<sender>,<identifier>  string: the alert id an agency's CAP message belongs to
    P media:<sha256>             bytes: a stored photo; P media:<sha256>:type its MIME type
    P media:<sha256>:users       set: ids of the active alerts showing it
    P agency:<agency>:alerts     zset: the agency's alert ids scored by last submission
    P reach:<node>               bytes: a broadcaster's per-cell connection counts (TTL)
    P reach:nodes                zset: broadcaster nodes scored by their last snapshot

Writes that must agree (assigning a version, applying one, expiring) are Lua scripts,
so a crash between two commands cannot leave half an alert. Everything is in one Redis
(one shard); the scripts are not Cluster-safe.
"""

from __future__ import annotations

from typing import Literal

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError

from ._lua import APPLY, CAP, EXPIRE, SUBMIT, SWEEP
from .model import AlertRecord

__all__ = [
    "BadEntry",
    "Event",
    "Keys",
    "NotReplicated",
    "Store",
    "Submission",
    "decode_event",
]


class NotReplicated(RedisError):
    """Fewer replicas than required acknowledged a write in time (Redis WAIT).

    A ``RedisError``, so every caller that answers 503 on a Redis failure answers
    503 here too: the write may be lost in a failover, so it was not accepted.
    """


class Submission(msgspec.Struct, frozen=True, kw_only=True):
    """One version as received: an alert (new content) or a cancel."""

    kind: Literal["alert", "cancel"]
    agency: str
    received_ts: float
    record: AlertRecord | None = None
    note: str | None = None
    warnings: list[str] = []
    public: bool = True
    """False: the area is outside the pilot states (``AMBER_PUBLIC_STATES``), so the
    version is stored but not delivered to the public."""


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """An entry of the events stream: publish a version, or clear an alert."""

    kind: Literal["publish", "clear"]
    id: str
    version: int
    reason: Literal["cancelled", "expired"] | None = None
    record: AlertRecord | None = None


class BadEntry(msgspec.Struct, frozen=True):
    """A stream entry that is not a valid :class:`Event`; ``reason`` says why."""

    reason: str


def decode_event(fields: dict[bytes, bytes]) -> Event | BadEntry:
    """The event of one stream entry's fields, or why it is not one (never raises)."""
    raw = fields.get(b"e")
    if raw is None:
        return BadEntry("no 'e' field")
    try:
        event = _event_dec.decode(raw)
    except msgspec.DecodeError as exc:  # ValidationError included: unknown kind, types
        return BadEntry(f"undecodable: {exc}")
    if event.kind == "publish" and event.record is None:
        return BadEntry("publish without a record")
    if event.kind == "clear" and event.reason is None:
        return BadEntry("clear without a reason")
    return event


_enc = msgspec.msgpack.Encoder()
_sub_dec = msgspec.msgpack.Decoder(Submission)
_rec_dec = msgspec.msgpack.Decoder(AlertRecord)
_event_dec = msgspec.msgpack.Decoder(Event)


class Keys:
    """Key names under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.active = prefix + "active"
        self.ended = prefix + "ended"
        self.expiries = prefix + "expiries"
        self.events = prefix + "events"
        self.queue = prefix + "queue"
        self.wait_mark = prefix + "wait-mark"

    def sub(self, key: str) -> str:
        return f"{self.prefix}sub:{key}"

    def alert(self, alert_id: str) -> str:
        return f"{self.prefix}alert:{alert_id}"

    def version(self, alert_id: str, version: int) -> str:
        return f"{self.prefix}alert:{alert_id}:v{version}"

    def stats(self, alert_id: str) -> str:
        return f"{self.prefix}stats:{alert_id}"

    def nonce(self, digest: str) -> str:
        return f"{self.prefix}nonce:{digest}"

    def cap(self, agency: str, sender: str, identifier: str) -> str:
        return f"{self.prefix}cap:{agency}/{sender},{identifier}"

    def media(self, sha256: str) -> str:
        return f"{self.prefix}media:{sha256}"

    def agency_alerts(self, agency: str) -> str:
        return f"{self.prefix}agency:{agency}:alerts"

    def reach(self, node: str) -> str:
        return f"{self.prefix}reach:{node}"

    @property
    def reach_nodes(self) -> str:
        return self.prefix + "reach:nodes"


class Store:
    """The alert store on one Redis connection pool.

    Every method may raise ``redis.RedisError`` or ``OSError`` when Redis is
    unreachable; callers map that to 503 (API) or a retry (worker).
    """

    def __init__(self, redis: Redis, prefix: str, *, retention_s: int, stream_maxlen: int) -> None:
        self.redis = redis
        self.keys = Keys(prefix)
        self.retention_s = retention_s
        self.stream_maxlen = stream_maxlen
        self._submit = redis.register_script(SUBMIT)
        self._apply = redis.register_script(APPLY)
        self._expire = redis.register_script(EXPIRE)
        self._cap = redis.register_script(CAP)
        self._sweep = redis.register_script(SWEEP)

    async def _hgetall(self, key: str) -> dict[bytes, bytes]:
        result = self.redis.hgetall(key)
        raw: dict[bytes, bytes] = await result if not isinstance(result, dict) else result
        return raw

    async def submit(
        self, idem_key: str, alert_id: str, submission: Submission
    ) -> tuple[int, bool, str]:
        """Store a submission as the alert's next version, atomically.

        Returns ``(version, existing, state)``: ``existing`` is true when this
        idempotency key was seen before (the first answer is returned). A version of
        -1 means refused; ``state`` says why: ``owned`` (another agency's id),
        ``cancelled`` (the alert was cancelled), ``unknown`` (cancel of no alert).
        """
        k = self.keys
        res = await self._submit(
            keys=[k.sub(idem_key), k.alert(alert_id), k.agency_alerts(submission.agency)],
            args=[
                submission.agency,
                submission.kind,
                _enc.encode(submission),
                k.version(alert_id, 0)[:-1],
                self.retention_s,
                k.prefix,
                alert_id,
                "" if submission.record is None else submission.record.expires_ts,
                submission.received_ts,
            ],
        )
        version, existing, state = int(res[0]), bool(int(res[1])), _text(res[2])
        return version, existing, state

    async def replicated(self, replicas: int, timeout_s: float) -> None:
        """Return once ``replicas`` replicas hold every write acknowledged so far.

        Redis WAIT counts the writes of the connection it is sent on, and the
        submission and its job were written on other connections of the pool (or of
        arq's), so a write of this connection goes first: replication is one ordered
        stream, so replicas past this write hold everything acknowledged before it.

        Raises:
            NotReplicated: fewer replicas acknowledged within ``timeout_s``.
            redis.RedisError or OSError: Redis unreachable.
        """
        if replicas <= 0:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.incr(self.keys.wait_mark)
            pipe.wait(replicas, max(1, int(timeout_s * 1000)))
            _, acked = await pipe.execute()
        if int(acked) < replicas:
            raise NotReplicated(
                f"{acked} of {replicas} required replicas acknowledged within {timeout_s:g} s"
            )

    async def load_submission(self, alert_id: str, version: int) -> Submission | None:
        raw = await self.redis.get(self.keys.version(alert_id, version))
        return None if raw is None else _sub_dec.decode(raw)

    async def meta(self, alert_id: str) -> dict[str, str]:
        raw = await self._hgetall(self.keys.alert(alert_id))
        return {_text(k): _text(v) for k, v in raw.items()}

    async def apply(
        self,
        alert_id: str,
        version: int,
        *,
        record: AlertRecord | None,
        reason: Literal["cancelled"] | None,
        public: bool,
        state: str,
    ) -> bool:
        """Make ``version`` the applied one and tell broadcasters; false if superseded."""
        k = self.keys
        event = b""
        if public:
            event = _enc.encode(
                Event(
                    kind="publish" if record is not None else "clear",
                    id=alert_id,
                    version=version,
                    reason=reason,
                    record=record,
                )
            )
        res = await self._apply(
            keys=[k.alert(alert_id), k.active, k.expiries, k.ended, k.events],
            args=[
                alert_id,
                version,
                _enc.encode(record) if (record is not None and public) else b"",
                record.expires_ts if record is not None else 0,
                reason or "",
                event,
                self.stream_maxlen,
                state,
                k.prefix,
                self.retention_s,
                *(
                    [p.sha256 for p in record.content.photos]
                    if record is not None and public
                    else []
                ),
            ],
        )
        return bool(res)

    async def due(self, now: float) -> list[str]:
        """Ids of active alerts whose expiry has passed."""
        ids = await self.redis.zrangebyscore(self.keys.expiries, "-inf", now)
        return [_text(i) for i in ids]

    async def expire(self, alert_id: str, now: float) -> bool:
        """Expire one alert if still due; true if it was."""
        k = self.keys
        meta = await self.meta(alert_id)
        version = int(meta.get("applied", "0"))
        event = _enc.encode(Event(kind="clear", id=alert_id, version=version, reason="expired"))
        res = await self._expire(
            keys=[k.alert(alert_id), k.active, k.expiries, k.ended, k.events],
            args=[alert_id, now, event, self.stream_maxlen, k.prefix, self.retention_s],
        )
        return bool(res)

    async def sweep_ended(self, now: float, limit: int = 1000) -> int:
        """Forget end markers older than ``retention_s`` (at most ``limit``); how many."""
        k = self.keys
        res = await self._sweep(
            keys=[k.ended, k.prefix + "ended_at"], args=[now - self.retention_s, limit]
        )
        return int(res)

    async def active(self) -> dict[str, AlertRecord]:
        """Every public active alert, by id."""
        raw = await self._hgetall(self.keys.active)
        return {_text(k): _rec_dec.decode(v) for k, v in raw.items()}

    async def ended(self) -> dict[str, str]:
        raw = await self._hgetall(self.keys.ended)
        return {_text(k): _text(v) for k, v in raw.items()}

    async def last_event_id(self) -> str:
        """Id of the newest stream entry ("0-0" if none): where a reader starts."""
        entries = await self.redis.xrevrange(self.keys.events, count=1)
        return _text(entries[0][0]) if entries else "0-0"

    async def read_events(
        self, after: str, *, block_ms: int, count: int = 100
    ) -> list[tuple[str, Event | BadEntry]]:
        """Stream entries after ``after``, waiting up to ``block_ms`` for the first.

        An entry that is not a valid :class:`Event` (undecodable, an unknown kind,
        missing fields) comes back as a :class:`BadEntry` in its place, so one bad
        entry never hides the good ones after it.
        """
        res = await self.redis.xread({self.keys.events: after}, count=count, block=block_ms)
        out: list[tuple[str, Event | BadEntry]] = []
        for _stream, entries in res or []:
            for entry_id, fields in entries:
                out.append((_text(entry_id), decode_event(fields)))
        return out

    async def add_stats(self, counts: dict[tuple[str, int, str], int]) -> None:
        """Add counters (alert id, version, figure) -> n in one round trip."""
        if not counts:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for (alert_id, version, figure), n in counts.items():
                key = self.keys.stats(alert_id)
                pipe.hincrby(key, f"{version}:{figure}", n)
                # Figures written after the alert's keys got their TTL (acks come late):
                # never keep them past retention (NX: a TTL already set is the right one).
                pipe.expire(key, self.retention_s, nx=True)
            await pipe.execute()

    async def stats(self, alert_id: str) -> dict[int, dict[str, int]]:
        raw = await self._hgetall(self.keys.stats(alert_id))
        out: dict[int, dict[str, int]] = {}
        for k, v in raw.items():
            version, _, figure = _text(k).partition(":")
            out.setdefault(int(version), {})[figure] = int(v)
        return out

    async def use_nonce(self, digest: str, ttl_s: int) -> bool:
        """Record a signature as used; false if it was used before."""
        return bool(await self.redis.set(self.keys.nonce(digest), b"1", nx=True, ex=ttl_s))

    async def forget_nonce(self, digest: str) -> None:
        await self.redis.delete(self.keys.nonce(digest))

    async def remember_cap(self, agency: str, sender: str, identifier: str, alert_id: str) -> None:
        """Remember which alert an agency's CAP message belongs to, for its ``references``.

        Keyed by agency: another agency citing the same message never finds this alert.
        """
        k = self.keys
        await self._cap(
            keys=[
                k.cap(agency, sender, identifier),
                k.prefix + f"keys:{alert_id}",
                k.alert(alert_id),
            ],
            args=[alert_id, self.retention_s],
        )

    async def cap_alert_id(self, agency: str, sender: str, identifier: str) -> str | None:
        raw = await self.redis.get(self.keys.cap(agency, sender, identifier))
        return None if raw is None else _text(raw)

    async def put_media(self, sha256: str, data: bytes, mime_type: str) -> None:
        k = self.keys.media(sha256)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(k, data, ex=self.retention_s)
            pipe.set(k + ":type", mime_type, ex=self.retention_s)
            await pipe.execute()

    async def get_media(self, sha256: str) -> tuple[bytes, str] | None:
        k = self.keys.media(sha256)
        data, mime = await self.redis.mget([k, k + ":type"])
        if data is None or mime is None:
            return None
        return bytes(data), _text(mime)

    async def agency_alerts(self, agency: str, limit: int) -> list[tuple[str, float]]:
        """The agency's alert ids with their last submission time, newest first."""
        raw = await self.redis.zrevrange(
            self.keys.agency_alerts(agency), 0, limit - 1, withscores=True
        )
        return [(_text(i), float(t)) for i, t in raw]

    async def put_counts(self, node: str, snapshot: bytes, now: float, ttl_s: float) -> None:
        """Publish one broadcaster's connection-count snapshot, kept ``ttl_s``."""
        ttl_ms = max(1, int(ttl_s * 1000))
        await self.redis.set(self.keys.reach(node), snapshot, px=ttl_ms)
        await self.redis.zadd(self.keys.reach_nodes, {node: now})
        await self.redis.zremrangebyscore(self.keys.reach_nodes, "-inf", now - ttl_s)
        await self.redis.pexpire(self.keys.reach_nodes, ttl_ms)

    async def counts(self, now: float, ttl_s: float) -> list[bytes]:
        """The live snapshots of every broadcaster node (one round trip each way)."""
        nodes = await self.redis.zrangebyscore(self.keys.reach_nodes, now - ttl_s, "+inf")
        if not nodes:
            return []
        blobs = await self.redis.mget([self.keys.reach(_text(n)) for n in nodes])
        return [bytes(b) for b in blobs if b is not None]


def _text(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v
