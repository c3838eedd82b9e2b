"""``POST /v1/alerts/preview``: a signed dry run of ``POST /v1/alerts``; stores and sends nothing.

The body is the same (JSON or CAP 1.2), signed the same way (the signature is spent
like any other). The answer is always 200 once the request is authentic: the resolved
area (GeoJSON, for a map), the counties it touches, the warnings, the problem the hook
would give (problem+json, embedded; ``null`` when it would accept), and the reach:
clients connected inside the area now, summed over every broadcaster (see
:mod:`broadcaster.reach`). Authentication failures keep their status (401, 413, 415).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec
import shapely
from redis.exceptions import RedisError
from shapely.geometry import MultiPolygon, Polygon
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from amber_relay import geo
from amber_relay.agencies import Agency, namespaced_id
from amber_relay.errors import Invalid, Rejected, UnsupportedType
from amber_relay.geodata import GeoData
from amber_relay.model import AlertIn, AlertRecord
from amber_relay.outlines import simplified_geojson

from ._context import ApiContext, json_response, unavailable
from ._problem import from_rejected, problem_body
from .hook import AgencyHook
from .reach import Snapshot, count_inside, read_snapshots

__all__ = ["Preview"]

_JSON_TYPES = {"application/json"}
_CAP_TYPES = {"application/cap+xml", "application/xml", "text/xml"}
# Display tolerance of the resolved area drawn on the console's map (degrees, ~100 m).
_AREA_DISPLAY_DEG = 0.001


@dataclass
class _Outcome:
    """What a dry run found (before reach)."""

    alert_id: str | None = None
    kind: str = "alert"
    record: AlertRecord | None = None
    warnings: list[str] = field(default_factory=list)
    problem: dict[str, object] | None = None
    version: int | None = None
    """The version a send would create (None when refused)."""
    pilot_public: bool = True
    """False when the area is outside the pilot states (stored, not delivered)."""


class Preview:
    """Handler of ``POST /v1/alerts/preview``."""

    def __init__(self, ctx: ApiContext, hook: AgencyHook) -> None:
        self.ctx = ctx
        self.s = ctx.settings
        self.hook = hook

    async def post_preview(self, request: Request) -> Response:
        """Dry-run a submission; see the module docstring for the answer's shape."""
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in _JSON_TYPES and ctype not in _CAP_TYPES:
            return from_rejected(
                UnsupportedType(
                    f"Content-Type {ctype or '(none)'!r} is not accepted; send"
                    " application/json (amber-relay schema) or application/cap+xml (CAP 1.2)"
                )
            )

        async def act(agency: Agency, body: bytes) -> Response:
            out = _Outcome()
            try:
                if ctype in _JSON_TYPES:
                    await self._dry_json(agency, body, out)
                else:
                    await self._dry_cap(agency, body, out)
            except Rejected as exc:
                out.problem = problem_body(exc)
            return await self._answer(out)

        return await self.hook._signed(request, act)

    async def _validate(self, out: _Outcome, alert: AlertIn, agency: Agency, alert_id: str) -> None:
        # The hook's child processes: a preview is bounded like a send.
        validated = await self.hook.checks.validate(
            alert, agency, now=self.ctx.clock(), alert_id=alert_id
        )
        out.record = validated.record
        out.warnings.extend(validated.warnings)
        out.pilot_public, notes = await self.hook._in_pilot(validated.record)
        out.warnings.extend(notes)

    async def _dry_json(self, agency: Agency, body: bytes, out: _Outcome) -> None:
        alert = await self.hook.checks.parse_json(body)
        out.alert_id = namespaced_id(agency.id, alert.identifier)
        await self._check_owner(agency, out.alert_id, out)
        await self._validate(out, alert, agency, out.alert_id)

    async def _dry_cap(self, agency: Agency, body: bytes, out: _Outcome) -> None:
        msg = await self.hook.checks.parse_cap(body)
        out.warnings.extend(msg.warnings)
        if msg.scope.lower() != "public":
            raise Invalid(
                f"CAP scope {msg.scope} is not accepted: this hook publishes to the public"
                " (send scope Public)",
                code="cap_scope",
            )
        out.alert_id = await self.hook._cap_alert_id(agency, msg)
        out.kind = "cancel" if msg.msg_type == "cancel" else "alert"
        await self._check_owner(agency, out.alert_id, out)
        if out.kind == "alert":
            if msg.alert is None:
                raise Invalid("CAP Alert/Update needs an <info> block", code="cap_missing_info")
            await self._validate(out, msg.alert, agency, out.alert_id)

    async def _check_owner(self, agency: Agency, alert_id: str, out: _Outcome) -> None:
        # The refusals the store's submit script would give, read without writing.
        meta = await self.ctx.store.meta(alert_id)
        owner = meta.get("agency")
        if owner is not None and owner != agency.id:
            out.problem = _conflict(409, f"alert {alert_id!r} belongs to another agency", "owned")
        elif meta.get("cancelled") == "1":
            out.problem = _conflict(
                409,
                f"alert {alert_id!r} was cancelled; issue a new alert with a new identifier",
                "cancelled",
            )
        elif out.kind == "cancel" and owner is None:
            out.problem = _conflict(404, f"no alert {alert_id!r} to cancel", "unknown")
        else:
            out.version = int(meta.get("latest", "0")) + 1

    async def _answer(self, out: _Outcome) -> Response:
        record = out.record if out.problem is None else None
        reach: dict[str, object] = {"connected": 0, "as_of": _iso(self.ctx.clock())}
        shown: dict[str, object] | None = None
        area_json: dict[str, object] | None = None
        counties: list[dict[str, str]] = []
        if record is not None:
            try:
                snaps = await read_snapshots(
                    self.ctx.store, self.ctx.clock(), self.s.reach_publish_s
                )
            except (RedisError, OSError) as exc:
                return unavailable(exc)
            area_json, fips, connected = await run_in_threadpool(
                _resolve, record, self.ctx.geodata, snaps
            )
            counties = [{"fips": f, "name": self.ctx.geodata.county_names.get(f, f)} for f in fips]
            as_of = min((s.t for s in snaps), default=self.ctx.clock())
            reach = {"connected": connected, "as_of": _iso(as_of)}
            shown = msgspec.to_builtins(
                msgspec.structs.replace(record.content, version=out.version or 1)
            )
            if record.status != "actual":
                out.warnings.append(
                    f"status {record.status}: stored only, no one is alerted (reach is the"
                    " area's, for reference)"
                )
        return json_response(
            {
                "ok": out.problem is None,
                "stored": False,
                "id": out.alert_id,
                "kind": out.kind,
                "version": out.version if out.problem is None else None,
                "public": record is not None and record.status == "actual" and out.pilot_public,
                "problem": out.problem,
                "warnings": out.warnings,
                "area": area_json,
                "circles": [msgspec.to_builtins(c) for c in record.circles] if record else [],
                "counties": counties,
                "reach": reach,
                "alert": shown,
            }
        )


def _conflict(status: int, detail: str, state: str) -> dict[str, object]:
    return {
        "type": f"https://amber-relay.dev/problems/alert_{state}",
        "title": "Conflict" if status == 409 else "Not Found",
        "status": status,
        "detail": detail,
        "code": f"alert_{state}",
        "field": "identifier",
    }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _resolve(
    record: AlertRecord, geodata: GeoData, snaps: list[Snapshot]
) -> tuple[dict[str, object] | None, list[str], int]:
    """Display area, counties touched and reach of a validated record (off the loop)."""
    area = geo.Area.from_coords(record.polygons, record.circles)
    # The counties county-tagged clients are matched by: what the record carries (the
    # hub uses the same list), computed at ingest.
    fips = list(record.regions) if record.regions is not None else []
    connected = count_inside(area, fips, snaps)
    parts: list[Polygon | MultiPolygon] = [
        Polygon(rings[0], rings[1:]) for rings in record.polygons if rings
    ]
    parts += [geo.circle_polygon(c) for c in record.circles]
    union = shapely.union_all(parts) if parts else None
    shape = None if union is None else simplified_geojson(union, _AREA_DISPLAY_DEG)
    return shape, fips, connected
