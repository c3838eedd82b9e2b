"""The agency console's routes: the page, the agency's alert list, the map's outlines.

- ``GET /console``: the page (``clients/web/console.html``; its files under ``/web/``)
- ``GET /v1/alerts?state=active|recent`` (signed): the agency's own alerts, newest first
- ``GET /v1/geo/states.json``, ``GET /v1/geo/counties.json?state=48``: simplified
  outlines (GeoJSON) of the shipped geodata, built on first request and cached

The preview is :mod:`broadcaster.preview`.
"""

from __future__ import annotations

import asyncio
import hashlib
from importlib import resources

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from amber_relay.agencies import Agency
from amber_relay.outlines import feature_collection

from ._context import ApiContext, json_response
from ._problem import problem
from .hook import AgencyHook

__all__ = ["Console"]

_STATES = ("active", "recent")
_OUTLINE_MAX_AGE_S = 3600


class Console:
    """Route handlers of the console's endpoints."""

    def __init__(self, ctx: ApiContext, hook: AgencyHook) -> None:
        self.ctx = ctx
        self.s = ctx.settings
        self.hook = hook
        self._outlines: dict[str, bytes] = {}
        self._outline_lock = asyncio.Lock()

    async def page(self, request: Request) -> Response:
        html = resources.files("clients").joinpath("web/console.html").read_text("utf-8")
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    async def list_alerts(self, request: Request) -> Response:
        """``GET /v1/alerts?state=active|recent``: this agency's alerts only.

        ``active``: queued or being broadcast and not yet expired; ``recent``: every
        alert submitted within the retention, any state. At most ``agency_list_max``.
        """
        state = request.query_params.get("state", "active")
        if state not in _STATES:
            return problem(400, "Bad Request", "state must be active or recent", code="bad_query")

        async def act(agency: Agency, body: bytes) -> Response:
            listed = await self.ctx.store.agency_alerts(agency.id, self.s.agency_list_max)
            now = self.ctx.clock()
            items = []
            for alert_id, updated_ts in listed:
                found = await self._item(alert_id, updated_ts, agency.id, now)
                if found is not None and (state == "recent" or found[1]):
                    items.append(found[0])
            return json_response({"state": state, "alerts": items})

        # Authenticated (before the body), single-use, like every signed request.
        return await self.hook._signed(request, act)

    async def _item(
        self, alert_id: str, updated_ts: float, agency: str, now: float
    ) -> tuple[dict[str, object], bool] | None:
        """The listing entry of one alert and whether it is live (None: not listable)."""
        store = self.ctx.store
        meta = await store.meta(alert_id)
        if meta.get("agency") != agency:
            return None  # expired from Redis, or (never) another agency's
        latest = int(meta.get("latest", "0"))
        record = None
        for v in range(latest, max(0, latest - 2), -1):  # a cancel is the last version
            sub = await store.load_submission(alert_id, v)
            if sub is not None and sub.record is not None:
                record = sub.record
                break
        cancelled = meta.get("cancelled") == "1"
        state = meta.get("state", "cancelling" if cancelled else "queued")
        expires_ts = record.expires_ts if record else 0.0
        live = state in ("queued", "active") and not cancelled and expires_ts > now
        item: dict[str, object] = {
            "id": alert_id,
            "state": state,
            "latest_version": latest,
            "applied_version": int(meta.get("applied", "0")),
            "headline": record.content.headline if record else "",
            "status": record.status if record else None,
            "expires": record.content.expires if record else None,
            "expires_ts": expires_ts,
            "updated_ts": updated_ts,
            "cancelled": cancelled,
        }
        return item, live

    async def states(self, request: Request) -> Response:
        """Every state's outline, simplified for display."""
        return await self._outline(request, "states")

    async def counties(self, request: Request) -> Response:
        """One state's counties (``?state=`` 2-digit FIPS), simplified for display."""
        state = request.query_params.get("state", "")
        if len(state) != 2 or not state.isdigit() or state not in self.ctx.geodata.states:
            return problem(
                400,
                "Bad Request",
                f"state={state!r}: give a 2-digit state FIPS code (e.g. 48 for Texas)",
                code="bad_query",
            )
        return await self._outline(request, state)

    async def _outline(self, request: Request, key: str) -> Response:
        data = self._outlines.get(key)
        if data is None:
            async with self._outline_lock:  # one build per key, off the event loop
                data = self._outlines.get(key)
                if data is None:
                    data = self._outlines[key] = await run_in_threadpool(self._build, key)
        etag = f'"{hashlib.sha256(data).hexdigest()[:20]}"'
        headers = {"Cache-Control": f"public, max-age={_OUTLINE_MAX_AGE_S}", "ETag": etag}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(data, media_type="application/geo+json", headers=headers)

    def _build(self, key: str) -> bytes:
        g = self.ctx.geodata
        tol = self.s.outline_simplify_deg
        if key == "states":
            return feature_collection(g.states, g.state_names, 2 * tol)
        # by code first: the counties are built on access, so build only this state's
        mine = {f: g.counties[f] for f in g.counties if f[:2] == key}
        return feature_collection(mine, g.county_names, tol)
