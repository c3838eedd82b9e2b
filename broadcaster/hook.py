"""The agency hook: signed POST/DELETE/GET of alerts, from bytes to a queued version.

Every request is verified before its body is read as far as headers allow (agency
known, signature header well formed, timestamp fresh: else 401 without reading), then
its body is read within the process's body budget, and its HMAC checked and spent
(each signature accepted once, reads included) before the body is parsed. Alert ids
are ``<agency>/<identifier>``: no agency can reach another's alert.

A 202 is sent only after the submission is in Redis and its job is
queued; if either fails the answer is 503 and the agency retries with a fresh
signature (the same submission is idempotent).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from amber_relay import cap, ingest, pilot, resubmit, signing
from amber_relay.agencies import Agency, namespaced_id
from amber_relay.errors import Invalid, Rejected, Unauthorized, UnsupportedType
from amber_relay.logs import alert_context
from amber_relay.model import AlertIn, AlertRecord
from amber_relay.store import Submission

from ._body import Aborted, BodyBudget, Busy
from ._context import ApiContext, json_response, unavailable
from ._problem import from_rejected, problem

__all__ = ["AgencyHook"]

log = logging.getLogger("amber_relay.hook")

_JSON_TYPES = {"application/json"}
_CAP_TYPES = {"application/cap+xml", "application/xml", "text/xml"}
_FIGURES = ("matched", "delivered", "shown", "dismissed", "call", "more")


class AgencyHook:
    """Route handlers of the agency-facing endpoints."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self.s = ctx.settings
        codes = pilot.parse_states(ctx.settings.public_states, ctx.geodata.states)
        self._pilot = {c: ctx.geodata.states[c] for c in sorted(codes)}
        self.checks = ctx.checks
        self._bodies = BodyBudget(ctx.settings.api_body_budget_bytes, ctx.settings.max_body_bytes)

    def _preauth(self, request: Request) -> tuple[Agency, signing.SignatureHeader]:
        """What can be checked before reading the body: agency, header form, freshness."""
        agency_id = request.headers.get("x-amber-agency")
        if not agency_id:
            raise Unauthorized("missing X-Amber-Agency header", code="missing_agency")
        agency = self.ctx.agencies.get(agency_id)
        if agency is None:
            raise Unauthorized(f"unknown agency {agency_id[:64]!r}", code="unknown_agency")
        parsed = signing.parse_header(
            request.headers.get("x-amber-signature"),
            now=self.ctx.clock(),
            tolerance_s=self.s.signature_tolerance_s,
        )
        return agency, parsed

    async def _use_nonce(self, digest: str) -> None:
        if not await self.ctx.store.use_nonce(digest, 2 * self.s.signature_tolerance_s):
            raise Unauthorized(
                "signature already used: sign every request anew (a fresh t), retries included",
                code="replayed_signature",
            )

    async def _signed(
        self, request: Request, act: Callable[[Agency, bytes], Awaitable[Response]]
    ) -> Response:
        """Authenticate a request, spend its signature, run ``act``; map failures to problems.

        The body is read only once the headers could be authentic, within the process's
        body budget; every signature is accepted once (reads included).
        """
        try:
            agency, parsed = self._preauth(request)
            async with self._bodies.read(request) as body:
                digest = signing.check(
                    parsed, agency.secret, request.method, _target(request), body
                )
                # Spent per agency: no agency's request can use up another's signature.
                nonce = f"{agency.id}/{digest}"
                await self._use_nonce(nonce)
                response = await act(agency, body)
                if response.status_code >= 500:
                    await self.ctx.store.forget_nonce(nonce)
                return response
        except Rejected as exc:
            return from_rejected(exc)
        except Busy:
            return problem(
                503,
                "Busy",
                "too many request bodies are in flight on this server; retry shortly",
                code="busy",
                headers={"Retry-After": "1"},
            )
        except Aborted:
            # Nobody is left to read it; the one log line was written by the reader.
            return problem(400, "Bad Request", "upload aborted", code="aborted")
        except (RedisError, OSError) as exc:
            return unavailable(exc)

    def _own_id(self, agency: Agency, raw: str) -> str | None:
        """The full id of ``raw`` (``<agency>/<identifier>`` or a bare identifier) if it is
        this agency's; None for another agency's namespace."""
        owner, sep, _ = raw.partition("/")
        if not sep:
            return namespaced_id(agency.id, raw)
        return raw if owner == agency.id else None

    async def post_alert(self, request: Request) -> Response:
        """``POST /v1/alerts``: a JSON or CAP alert, update or cancel."""
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype in _JSON_TYPES:
            return await self._signed(request, self._post_json)
        if ctype in _CAP_TYPES:
            return await self._signed(request, self._post_cap)
        return from_rejected(
            UnsupportedType(
                f"Content-Type {ctype or '(none)'!r} is not accepted; send"
                " application/json (amber-relay schema) or application/cap+xml (CAP 1.2)"
            )
        )

    async def _validate(
        self, alert: AlertIn, agency: Agency, alert_id: str | None = None
    ) -> ingest.Validated:
        # Geometry (bounded, but up to ~1 CPU-second for the worst accepted shapes) is
        # checked in a child process: this process's loop serves the stream's sockets.
        return await self.checks.validate(alert, agency, now=self.ctx.clock(), alert_id=alert_id)

    async def _post_json(self, agency: Agency, body: bytes) -> Response:
        alert = await self.checks.parse_json(body)  # 4 MiB: ~20 ms of decoding
        validated = await self._validate(alert, agency, namespaced_id(agency.id, alert.identifier))
        idem = f"json:{agency.id}:{alert.identifier}:{hashlib.sha256(body).hexdigest()}"
        public, notes = await self._in_pilot(validated.record)
        sub = Submission(
            kind="alert",
            agency=agency.id,
            received_ts=self.ctx.clock(),
            record=validated.record,
            warnings=validated.warnings + notes,
            public=public,
        )
        return await self._submit(idem, validated.record.id, sub)

    async def _post_cap(self, agency: Agency, body: bytes) -> Response:
        # XML of up to max_body_bytes: parsed in a child process like JSON.
        msg = await self.checks.parse_cap(body)
        if msg.scope.lower() != "public":
            raise Invalid(
                f"CAP scope {msg.scope} is not accepted: this hook publishes to the public"
                " (send scope Public)",
                code="cap_scope",
            )
        aid = await self._cap_alert_id(agency, msg)
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
            validated = await self._validate(msg.alert, agency, aid)
            public, notes = await self._in_pilot(validated.record)
            sub = Submission(
                kind="alert",
                agency=agency.id,
                received_ts=self.ctx.clock(),
                record=validated.record,
                warnings=warnings + validated.warnings + notes,
                note=msg.note,
                public=public,
            )
        # CAP keys are the agency's own: another agency re-sending this message makes
        # its own alert, never a replay of (or a claim on) this one.
        idem = f"{agency.id}/{msg.idempotency_key}"

        async def link() -> None:
            await self.ctx.store.remember_cap(agency.id, msg.sender, msg.identifier, aid)

        return await self._submit(idem, aid, sub, reuse_check=True, link=link)

    async def _in_pilot(self, record: AlertRecord) -> tuple[bool, list[str]]:
        """Whether the area touches a pilot state (always, with no pilot), and a warning."""
        if not self._pilot:
            return True, []
        if await run_in_threadpool(pilot.touches, record, self._pilot):
            return True, []
        states = ",".join(self._pilot)
        return False, [
            f"the area is outside the pilot states ({states}, AMBER_PUBLIC_STATES):"
            " stored, not delivered to the public"
        ]

    async def _cap_alert_id(self, agency: Agency, msg: cap.CapMessage) -> str:
        if msg.incidents:
            return namespaced_id(agency.id, msg.incidents[0])
        for ref in msg.references:
            known = await self.ctx.store.cap_alert_id(agency.id, ref.sender, ref.identifier)
            if known is not None:
                return known
        if msg.references:
            return namespaced_id(agency.id, msg.references[0].identifier)
        return namespaced_id(agency.id, msg.identifier)

    async def _submit(
        self,
        idem: str,
        alert_id: str,
        sub: Submission,
        *,
        reuse_check: bool = False,
        link: Callable[[], Awaitable[None]] | None = None,
    ) -> Response:
        """Store ``sub`` and queue its job: 202 only once both (and ``link``, the CAP
        message's link to its alert) are written and, if required, replicated."""
        version, existing, state = await self.ctx.store.submit(idem, alert_id, sub)
        if existing and reuse_check and version > 0:
            reused = await self._reused(idem, alert_id, version, sub)
            if reused is not None:
                return reused
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
        try:
            # Before the enqueue, whose WAIT then covers the link too: an Update citing
            # this message must find its alert on the replica a failover promotes.
            if link is not None:
                await link()
            await self.ctx.enqueue(alert_id, version, sub, not existing)
        except (RedisError, OSError) as exc:
            # Answered here so the log line names the alert version it is about.
            with alert_context(alert_id, version):
                return unavailable(exc)
        body: dict[str, Any] = {"id": alert_id, "version": version, "status": "accepted"}
        if sub.warnings:
            body["warnings"] = sub.warnings
        return json_response(body, 202, {"Amber-Idempotent-Replay": "true"} if existing else None)

    async def _reused(
        self, idem: str, alert_id: str, version: int, sub: Submission
    ) -> Response | None:
        """409 ``identifier_reused`` when a CAP key comes back with other content."""
        first = await self.ctx.store.load_submission(alert_id, version)
        changed = ["the alert it belongs to"] if first is None else resubmit.differences(first, sub)
        if not changed:
            return None
        key = idem.partition(":")[2]
        return problem(
            409,
            "Conflict",
            f"CAP message {key} was already received with other content ({', '.join(changed)}"
            " differ): a changed message needs a new identifier (an Update that references"
            " this one)",
            code="identifier_reused",
        )

    def _unknown(self, agency: Agency, raw: str) -> Response:
        return problem(
            404, "Not Found", f"no alert {raw!r} of agency {agency.id!r}", code="alert_unknown"
        )

    async def delete_alert(self, request: Request) -> Response:
        """``DELETE /v1/alerts/{id}``: cancel (idempotent per agency and id)."""
        raw = request.path_params["alert_id"]

        async def cancel(agency: Agency, body: bytes) -> Response:
            full = self._own_id(agency, raw)
            if full is None:
                return self._unknown(agency, raw)
            sub = Submission(kind="cancel", agency=agency.id, received_ts=self.ctx.clock())
            return await self._submit(f"delete:{full}", full, sub)

        return await self._signed(request, cancel)

    async def get_alert(self, request: Request) -> Response:
        """``GET /v1/alerts/{id}``: state and delivery figures per version (own alerts only)."""
        raw = request.path_params["alert_id"]

        async def read(agency: Agency, body: bytes) -> Response:
            full = self._own_id(agency, raw)
            meta = await self.ctx.store.meta(full) if full is not None else {}
            if full is None or not meta or meta.get("agency") != agency.id:
                return self._unknown(agency, raw)
            return _status(full, meta, await self.ctx.store.stats(full))

        return await self._signed(request, read)


def _target(request: Request) -> str:
    """What is signed of the URL: the path, and ``?query`` when there is one (so two
    reads of one resource in one second can differ, each signature being single-use)."""
    query = request.scope.get("query_string", b"")
    path: str = request.url.path
    return f"{path}?{query.decode('latin-1')}" if query else path


def _status(alert_id: str, meta: dict[str, str], stats: dict[int, dict[str, int]]) -> Response:
    figures = _FIGURES
    versions = {
        str(v): {f: stats.get(v, {}).get(f, 0) for f in figures}
        for v in range(1, int(meta.get("latest", "0")) + 1)
    }
    return json_response(
        {
            "id": alert_id,
            "state": meta.get("state", "queued"),
            "latest_version": int(meta.get("latest", "0")),
            "applied_version": int(meta.get("applied", "0")),
            "versions": versions,
            "totals": {f: sum(v[f] for v in versions.values()) for f in figures},
        }
    )
