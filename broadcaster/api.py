"""The HTTP API (Starlette): the agency hook, alert status, the poll fallback, media.

Routes:

- ``POST /v1/alerts`` (signed): JSON or CAP 1.2 -> 202 ``{"id", "version", "status"}``
- ``DELETE /v1/alerts/{id}`` (signed): cancel -> 202
- ``GET /v1/alerts/{id}`` (signed): state and delivery figures per version
- ``GET /v1/alerts/active?lat=&lon=`` or ``?region=`` (public): the hello answer
- ``GET /media/{sha256}``: photos, immutable
- ``GET /`` the demo interrupt page, ``GET /v1/config``, ``GET /v1/schema/alert.json``,
  ``GET /healthz``

A 202 is sent only after the submission is in Redis and its job is queued; if either
fails the answer is 503 and the agency retries (the same submission is idempotent).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import msgspec
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from amber_relay import cap, ingest, signing
from amber_relay.agencies import Agency
from amber_relay.errors import Invalid, Rejected, TooLarge, Unauthorized, UnsupportedType
from amber_relay.geodata import GeoData
from amber_relay.model import AlertIn
from amber_relay.settings import Settings
from amber_relay.store import Store, Submission

from ._problem import from_rejected, problem
from .hub import Hub

__all__ = ["ApiContext", "create_app"]

log = logging.getLogger("amber_relay.api")

_JSON_TYPES = {"application/json"}
_CAP_TYPES = {"application/cap+xml", "application/xml", "text/xml"}
_enc = msgspec.json.Encoder()


@dataclass(frozen=True)
class ApiContext:
    """What the API needs, built once by the serving process."""

    settings: Settings
    store: Store
    agencies: dict[str, Agency]
    geodata: GeoData
    hub: Hub
    enqueue: Callable[[str, int], Any]
    """Queue the apply job of (alert id, version); awaitable; raises on failure."""
    clock: Callable[[], float]


def _json(data: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        _enc.encode(data), status_code=status, media_type="application/json", headers=headers
    )


def _unavailable(exc: BaseException) -> Response:
    log.warning("store unavailable: %r", exc)
    return problem(
        503,
        "Alert store unavailable",
        "the alert could not be stored durably, so it was not accepted; retry with a"
        " fresh signature (resubmitting the same alert is safe: it is idempotent)",
        code="store_unavailable",
        headers={"Retry-After": "5"},
    )


class _Api:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self.s = ctx.settings

    async def _body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        limit = self.s.max_body_bytes
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise TooLarge(f"body of {declared} bytes exceeds the {limit}-byte limit")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"body exceeds the {limit}-byte limit")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _authenticate(self, request: Request, body: bytes) -> tuple[Agency, str]:
        agency_id = request.headers.get("x-amber-agency")
        if not agency_id:
            raise Unauthorized("missing X-Amber-Agency header", code="missing_agency")
        agency = self.ctx.agencies.get(agency_id)
        if agency is None:
            raise Unauthorized(f"unknown agency {agency_id!r}", code="unknown_agency")
        digest = signing.verify(
            request.headers.get("x-amber-signature"),
            agency.secret,
            request.method,
            request.url.path,
            body,
            now=self.ctx.clock(),
            tolerance_s=self.s.signature_tolerance_s,
        )
        return agency, digest

    async def _use_nonce(self, digest: str) -> None:
        if not await self.ctx.store.use_nonce(digest, 2 * self.s.signature_tolerance_s):
            raise Unauthorized(
                "signature already used: sign every request anew (a fresh t), retries included",
                code="replayed_signature",
            )

    async def post_alert(self, request: Request) -> Response:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        digest: str | None = None
        try:
            if ctype not in _JSON_TYPES and ctype not in _CAP_TYPES:
                raise UnsupportedType(
                    f"Content-Type {ctype or '(none)'!r} is not accepted; send"
                    " application/json (amber-relay schema) or application/cap+xml (CAP 1.2)"
                )
            body = await self._body(request)
            agency, digest = await self._authenticate(request, body)
            await self._use_nonce(digest)
            if ctype in _JSON_TYPES:
                response = await self._post_json(agency, body)
            else:
                response = await self._post_cap(agency, body)
            if response.status_code >= 500:
                await self.ctx.store.forget_nonce(digest)
            return response
        except Rejected as exc:
            return from_rejected(exc)
        except (RedisError, OSError) as exc:
            return _unavailable(exc)

    async def _validate(
        self, alert: AlertIn, agency: Agency, alert_id: str | None = None
    ) -> ingest.Validated:
        # Geometry unions can take tens of ms for state-wide areas: keep them off the
        # event loop that also serves the stream's sockets.
        now = self.ctx.clock()
        return await run_in_threadpool(
            ingest.validate, alert, agency, self.ctx.geodata, self.s, now=now, alert_id=alert_id
        )

    async def _post_json(self, agency: Agency, body: bytes) -> Response:
        alert = ingest.parse_json(body)
        validated = await self._validate(alert, agency)
        idem = f"json:{agency.id}:{alert.identifier}:{hashlib.sha256(body).hexdigest()}"
        sub = Submission(
            kind="alert",
            agency=agency.id,
            received_ts=self.ctx.clock(),
            record=validated.record,
            warnings=validated.warnings,
        )
        return await self._submit(idem, alert.identifier, sub)

    async def _post_cap(self, agency: Agency, body: bytes) -> Response:
        msg = cap.parse_cap(body, max_vertices=self.s.max_vertices)
        if msg.scope.lower() != "public":
            raise Invalid(
                f"CAP scope {msg.scope} is not accepted: this hook publishes to the public"
                " (send scope Public)",
                code="cap_scope",
            )
        alert_id = await self._cap_alert_id(msg)
        warnings = list(msg.warnings)
        if msg.msg_type == "cancel":
            sub = Submission(
                kind="cancel",
                agency=agency.id,
                received_ts=self.ctx.clock(),
                note=msg.note,
                warnings=warnings,
            )
        else:
            if msg.alert is None:
                raise Invalid("CAP Alert/Update needs an <info> block", code="cap_missing_info")
            validated = await self._validate(msg.alert, agency, alert_id)
            sub = Submission(
                kind="alert",
                agency=agency.id,
                received_ts=self.ctx.clock(),
                record=validated.record,
                warnings=warnings + validated.warnings,
                note=msg.note,
            )
        response = await self._submit(msg.idempotency_key, alert_id, sub)
        if response.status_code == 202:
            await self.ctx.store.remember_cap(msg.sender, msg.identifier, alert_id)
        return response

    async def _cap_alert_id(self, msg: cap.CapMessage) -> str:
        if msg.incidents:
            return msg.incidents[0]
        for ref in msg.references:
            known = await self.ctx.store.cap_alert_id(ref.sender, ref.identifier)
            if known is not None:
                return known
        if msg.references:
            return msg.references[0].identifier
        return msg.identifier

    async def _submit(self, idem: str, alert_id: str, sub: Submission) -> Response:
        version, existing, state = await self.ctx.store.submit(idem, alert_id, sub)
        if version < 0:
            detail = {
                "owned": f"alert {alert_id!r} belongs to another agency",
                "cancelled": f"alert {alert_id!r} was cancelled; issue a new alert with a new"
                " identifier",
                "unknown": f"no alert {alert_id!r} to cancel",
            }[state]
            status = 404 if state == "unknown" else 409
            return problem(
                status, "Conflict" if status == 409 else "Not Found", detail, code=f"alert_{state}"
            )
        await self.ctx.enqueue(alert_id, version)
        body: dict[str, Any] = {"id": alert_id, "version": version, "status": "accepted"}
        if sub.warnings:
            body["warnings"] = sub.warnings
        return _json(body, 202, {"Amber-Idempotent-Replay": "true"} if existing else None)

    async def delete_alert(self, request: Request) -> Response:
        alert_id = request.path_params["alert_id"]
        digest: str | None = None
        try:
            body = await self._body(request)
            agency, digest = await self._authenticate(request, body)
            await self._use_nonce(digest)
            sub = Submission(kind="cancel", agency=agency.id, received_ts=self.ctx.clock())
            response = await self._submit(f"delete:{agency.id}:{alert_id}", alert_id, sub)
            if response.status_code >= 500:
                await self.ctx.store.forget_nonce(digest)
            return response
        except Rejected as exc:
            return from_rejected(exc)
        except (RedisError, OSError) as exc:
            return _unavailable(exc)

    async def get_alert(self, request: Request) -> Response:
        alert_id = request.path_params["alert_id"]
        try:
            agency, _ = await self._authenticate(request, await self._body(request))
            meta = await self.ctx.store.meta(alert_id)
            if not meta or meta.get("agency") != agency.id:
                return problem(
                    404,
                    "Not Found",
                    f"no alert {alert_id!r} of agency {agency.id!r}",
                    code="alert_unknown",
                )
            stats = await self.ctx.store.stats(alert_id)
        except Rejected as exc:
            return from_rejected(exc)
        except (RedisError, OSError) as exc:
            return _unavailable(exc)
        figures = ("matched", "delivered", "shown", "dismissed", "call", "more")
        versions = {
            str(v): {f: stats.get(v, {}).get(f, 0) for f in figures}
            for v in range(1, int(meta.get("latest", "0")) + 1)
        }
        return _json(
            {
                "id": alert_id,
                "state": meta.get("state", "queued"),
                "latest_version": int(meta.get("latest", "0")),
                "applied_version": int(meta.get("applied", "0")),
                "versions": versions,
                "totals": {f: sum(v[f] for v in versions.values()) for f in figures},
            }
        )

    async def active(self, request: Request) -> Response:
        q = request.query_params
        try:
            lat = float(q["lat"]) if "lat" in q else None
            lon = float(q["lon"]) if "lon" in q else None
        except ValueError:
            return problem(400, "Bad Request", "lat and lon must be numbers", code="bad_query")
        region = q.get("region")
        if region is not None:
            if not (len(region) == 5 and region.isdigit()):
                return problem(
                    400,
                    "Bad Request",
                    "region must be a 5-digit county FIPS code",
                    code="bad_query",
                )
        elif lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
            return problem(
                400,
                "Bad Request",
                "give lat (-90..90) and lon (-180..180), or region",
                code="bad_query",
            )
        hub = self.ctx.hub
        etag = f'W/"{hub.generation}-{hash((lat, lon, region, q.get("seen"))) & 0xFFFFFFFF:x}"'
        headers = {
            "Cache-Control": f"public, max-age={self.s.poll_max_age_s}",
            "ETag": etag,
        }
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        seen = _parse_seen(q.get("seen", ""))
        if seen is None:
            return problem(
                400, "Bad Request", "seen must look like id:version,id:version", code="bad_query"
            )
        answer = hub.answer(lat, lon, region, seen)
        return _json(
            {
                "alerts": [msgspec.to_builtins(a.content) for a in answer.alerts],
                "clears": [{"id": i, "reason": r} for i, r in answer.clears],
            },
            headers=headers,
        )

    async def media(self, request: Request) -> Response:
        sha = request.path_params["sha256"]
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            return problem(404, "Not Found", "no such media", code="media_unknown")
        try:
            found = await self.ctx.store.get_media(sha)
        except (RedisError, OSError) as exc:
            return _unavailable(exc)
        if found is None:
            return problem(404, "Not Found", "no such media", code="media_unknown")
        data, mime = found
        return Response(
            data,
            media_type=mime,
            headers={
                "Cache-Control": "public, max-age=31536000, immutable",
                "ETag": f'"{sha}"',
            },
        )

    async def config(self, request: Request) -> Response:
        host = request.url.hostname or "127.0.0.1"
        return JSONResponse({"stream_url": f"ws://{host}:{self.s.stream_port}/v1/stream"})

    async def page(self, request: Request) -> Response:
        html = resources.files("clients").joinpath("web/index.html").read_text("utf-8")
        return HTMLResponse(html)

    async def schema(self, request: Request) -> Response:
        return _json(msgspec.json.schema(AlertIn))

    async def health(self, request: Request) -> Response:
        try:
            await self.ctx.store.redis.ping()
        except (RedisError, OSError) as exc:
            return problem(503, "Unhealthy", f"redis: {exc}", code="redis_down")
        return _json({"ok": True, "active": len(self.ctx.hub.alerts)})


def _parse_seen(raw: str) -> list[tuple[str, int]] | None:
    out: list[tuple[str, int]] = []
    for item in filter(None, raw.split(",")):
        alert_id, sep, version = item.rpartition(":")
        if not sep or not alert_id or not version.isdigit():
            return None
        out.append((alert_id, int(version)))
    return out


def create_app(ctx: ApiContext) -> Starlette:
    """The Starlette application for one serving process."""
    api = _Api(ctx)
    return Starlette(
        routes=[
            Route("/v1/alerts", api.post_alert, methods=["POST"]),
            Route("/v1/alerts/active", api.active, methods=["GET"]),
            Route("/v1/alerts/{alert_id}", api.get_alert, methods=["GET"]),
            Route("/v1/alerts/{alert_id}", api.delete_alert, methods=["DELETE"]),
            Route("/media/{sha256}", api.media, methods=["GET"]),
            Route("/v1/config", api.config, methods=["GET"]),
            Route("/v1/schema/alert.json", api.schema, methods=["GET"]),
            Route("/healthz", api.health, methods=["GET"]),
            Route("/", api.page, methods=["GET"]),
            Mount("/web", app=StaticFiles(packages=[("clients", "web")]), name="web"),
        ]
    )
