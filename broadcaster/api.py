"""The HTTP API (Starlette): the agency hook, the poll fallback, media, the demo page.

Routes:

- ``POST /v1/alerts`` (signed): JSON or CAP 1.2 -> 202 ``{"id", "version", "status"}``
- ``DELETE /v1/alerts/{agency}/{identifier}`` (signed): cancel -> 202
- ``GET /v1/alerts/{agency}/{identifier}`` (signed): state and delivery figures per version
- ``GET /v1/alerts/active?lat=&lon=`` or ``?region=`` (public): the hello answer
- ``GET /media/{sha256}``: photos, immutable
- ``POST /v1/alerts/preview``, ``GET /v1/alerts?state=`` (signed), ``GET /console``,
  ``GET /v1/geo/...``: the agency console (:mod:`broadcaster.console`, :mod:`.preview`)
- ``GET /`` the demo interrupt page (``/web/...`` its files), ``GET /v1/config``,
  ``GET /v1/schema/alert.json``, ``GET /healthz`` (alive), ``GET /readyz`` (ready)

The agency-facing handlers are in :mod:`broadcaster.hook`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import msgspec
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from amber_relay import metrics, pilot
from amber_relay.model import AlertIn

from ._context import ApiContext, json_response, unavailable
from ._problem import error_handlers, problem
from .console import Console
from .hook import AgencyHook
from .preview import Preview

__all__ = ["ApiContext", "create_app"]

_FIPS5 = re.compile(r"[0-9]{5}")


class _Public:
    """Route handlers of the public endpoints."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self.s = ctx.settings

    async def active(self, request: Request) -> Response:
        q = request.query_params
        try:
            lat = float(q["lat"]) if "lat" in q else None
            lon = float(q["lon"]) if "lon" in q else None
        except ValueError:
            return problem(400, "Bad Request", "lat and lon must be numbers", code="bad_query")
        region = q.get("region")
        if region is not None:
            # Exactly five ASCII digits: a county FIPS code (current or retired).
            code = self.ctx.geodata.region_code(region) if _FIPS5.fullmatch(region) else None
            if code is None:
                return problem(
                    400,
                    "Bad Request",
                    f"unknown region {region!r}: expected a 5-digit county FIPS code",
                    code="bad_query",
                )
            region = code
        elif lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
            return problem(
                400,
                "Bad Request",
                "give lat (-90..90) and lon (-180..180), or region",
                code="bad_query",
            )
        seen = _parse_seen(q.get("seen", ""))
        if seen is None:
            return problem(
                400, "Bad Request", "seen must look like id:version,id:version", code="bad_query"
            )
        answer = self.ctx.hub.answer(lat, lon, region, seen)
        # The ETag names the answer itself, so every replica gives the same one and a
        # cache in front of several broadcasters keeps working.
        tag = ";".join(
            [f"{a.id}:{a.version}" for a in answer.alerts] + [f"-{i}:{r}" for i, r in answer.clears]
        )
        etag = f'"{hashlib.sha256(tag.encode()).hexdigest()[:20]}"'
        headers = {"Cache-Control": f"public, max-age={self.s.poll_max_age_s}", "ETag": etag}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return json_response(
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
            return unavailable(exc)
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
        """Where the page's stream is, from settings only (never the request's Host).

        ``public_stream_url`` when set; else the host of ``public_base_url`` (or the bind
        address) and the stream port, wss behind TLS (direct or at a proxy).
        """
        if self.s.public_stream_url:
            return json_response({"stream_url": self.s.public_stream_url})
        base = urlsplit(self.s.public_base_url or "")
        host = base.hostname or _bind_host(self.s.host)
        if ":" in host:
            host = f"[{host}]"
        proto = request.headers.get("x-forwarded-proto", request.url.scheme)
        scheme = "wss" if "https" in (proto, base.scheme) else "ws"
        return json_response({"stream_url": f"{scheme}://{host}:{self.s.stream_port}/v1/stream"})

    async def page(self, request: Request) -> Response:
        html = resources.files("clients").joinpath("web/index.html").read_text("utf-8")
        return HTMLResponse(html)

    async def schema(self, request: Request) -> Response:
        return json_response(msgspec.json.schema(AlertIn))

    async def health(self, request: Request) -> Response:
        """Liveness: the process and its event loop answer (no dependency checked)."""
        return json_response({"ok": True, "active": len(self.ctx.hub.alerts)})

    async def ready(self, request: Request) -> Response:
        """Readiness: 200 while this process should get traffic, else 503 and a reason.

        Not ready while draining, while the feed has not synced or has not reached the
        events stream's head within ``feed_max_lag_s``, while a check of the process
        (``ctx.not_ready``) fails, or while Redis does not answer a ping within a
        second. The reason is short and names no internal address or error text: it is
        what a load balancer logs.
        """
        health = self.ctx.health
        reason = health.not_ready(self.s.feed_max_lag_s) or self.ctx.not_ready()
        if reason is None:
            try:
                async with asyncio.timeout(1.0):
                    await self.ctx.store.redis.ping()
            except (RedisError, OSError, TimeoutError):
                metrics.REDIS_ERRORS.labels("readyz").inc()
                reason = "redis unreachable"
        if reason is not None:
            return problem(
                503,
                "Not Ready",
                reason,
                code="not_ready",
                headers={"Retry-After": "1", "Cache-Control": "no-store"},
            )
        states = sorted(pilot.parse_states(self.s.public_states))
        lag = health.feed.lag_s()
        return json_response(
            {
                "ok": True,
                "ready": True,
                "active": len(self.ctx.hub.alerts),
                "public_states": states or "all",
                "feed_lag_s": round(lag or 0.0, 3),
            },
            headers={"Cache-Control": "no-store"},
        )


def _bind_host(host: str) -> str:
    return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)


def _parse_seen(raw: str) -> list[tuple[str, int]] | None:
    out: list[tuple[str, int]] = []
    for item in filter(None, raw.split(",")):
        alert_id, sep, version = item.rpartition(":")
        if not sep or not alert_id or not (version.isascii() and version.isdigit()):
            return None
        out.append((alert_id, int(version)))
    return out


def _counted(handler: Callable[[Request], Awaitable[Response]]) -> Callable[..., Any]:
    """``handler`` with its answers counted by status and problem code (per request)."""

    async def counted(request: Request) -> Response:
        response = await handler(request)
        code = "accepted"
        if response.status_code >= 300:
            code = "unknown"
            if response.media_type == "application/problem+json":
                with contextlib.suppress(ValueError, AttributeError):
                    code = str(json.loads(bytes(response.body))["code"])
        metrics.HOOK_ANSWERS.labels(str(response.status_code), code).inc()
        return response

    return counted


def create_app(ctx: ApiContext, extra_routes: Sequence[Route] = ()) -> Starlette:
    """The Starlette application for one serving process (``extra_routes`` appended)."""
    api = _Public(ctx)
    hook = AgencyHook(ctx)
    console = Console(ctx, hook)
    return Starlette(
        exception_handlers=error_handlers(),
        routes=[
            *extra_routes,
            Route("/v1/alerts", _counted(hook.post_alert), methods=["POST"]),
            Route("/v1/alerts", console.list_alerts, methods=["GET"]),
            Route("/v1/alerts/preview", Preview(ctx, hook).post_preview, methods=["POST"]),
            Route("/v1/alerts/active", api.active, methods=["GET"]),
            # Ids are <agency>/<identifier>: the route takes the slash.
            Route("/v1/alerts/{alert_id:path}", hook.get_alert, methods=["GET"]),
            Route("/v1/alerts/{alert_id:path}", _counted(hook.delete_alert), methods=["DELETE"]),
            Route("/media/{sha256}", api.media, methods=["GET"]),
            Route("/v1/config", api.config, methods=["GET"]),
            Route("/v1/schema/alert.json", api.schema, methods=["GET"]),
            Route("/healthz", api.health, methods=["GET"]),
            Route("/readyz", api.ready, methods=["GET"]),
            Route("/", api.page, methods=["GET"]),
            Route("/console", console.page, methods=["GET"]),
            Route("/v1/geo/states.json", console.states, methods=["GET"]),
            Route("/v1/geo/counties.json", console.counties, methods=["GET"]),
            Mount("/web", app=StaticFiles(packages=[("clients", "web")]), name="web"),
        ],
    )
