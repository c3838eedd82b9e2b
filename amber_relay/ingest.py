"""From an agency's bytes to a validated alert record (pure: no I/O, no clock reads).

``parse_json`` turns a JSON body into :class:`~amber_relay.model.AlertIn`;
:func:`validate` checks times, geometry, limits and jurisdiction and resolves the area
(GeoJSON polygons, circles, SAME counties) into an :class:`~amber_relay.model.AlertRecord`
of version 0; storage assigns the version. What broadcasters need to match the area
(the counties it touches, its box, circles without repeats) is computed here, once,
so no serving loop ever does county geometry. Every step's cost is bounded whatever
the drawing (``_bounded``); callers run this off their event loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import msgspec
import shapely
from shapely.geometry.base import BaseGeometry

from . import geo, policy
from ._antimeridian import crosses, unwrap_rings, wrap_to_world
from ._bounded import Limits, check_parts
from ._limits import json_length_reason
from .agencies import Agency
from .errors import Invalid, Malformed
from .geodata import GeoData
from .model import AlertContent, AlertIn, AlertRecord, Circle, Info, MultiPolygonGeometry
from .settings import Settings

__all__ = ["Validated", "complete", "decode_utf8", "parse_json", "parse_time", "validate"]

_json_decoder = msgspec.json.Decoder(AlertIn)


@dataclass(frozen=True)
class Validated:
    """A checked alert (version 0) and the notes to report back to the agency."""

    record: AlertRecord
    warnings: list[str] = field(default_factory=list)


def decode_utf8(body: bytes) -> str:
    """The body as text.

    Raises:
        Malformed: not valid UTF-8; the reason names the byte and its offset.
    """
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Malformed(
            f"body is not valid UTF-8: byte 0x{body[exc.start]:02x} at offset {exc.start}",
            code="bad_utf8",
        ) from None


def parse_json(body: bytes) -> AlertIn:
    """Decode a JSON alert.

    Raises:
        Malformed: not UTF-8, not JSON, or nested too deeply.
        Invalid: JSON of the wrong shape; the reason carries the JSON path.
    """
    decode_utf8(body)
    try:
        return _json_decoder.decode(body)
    except msgspec.ValidationError as exc:
        reason = json_length_reason(str(exc), body)
        if reason is not None:
            raise Invalid(reason, code="too_long") from None
        raise Invalid(str(exc), code="schema") from None
    except msgspec.DecodeError as exc:
        raise Malformed(f"malformed JSON: {exc}", code="bad_json") from None
    except RecursionError:
        # The typed decoder stops at the first level that does not match the schema,
        # so only bodies nested where the schema nests that deep get here.
        raise Malformed("JSON nested too deeply", code="too_deep") from None


def parse_time(value: str, label: str) -> float:
    """Unix seconds of an RFC 3339 / CAP time that carries an offset.

    Raises:
        Invalid: unparsable, or without an offset.
    """
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid(
            f"{label}: {value!r} is not an RFC 3339 time (e.g. 2026-11-22T15:00:00-06:00)",
            code="bad_time",
        ) from None
    if dt.tzinfo is None:
        raise Invalid(f"{label}: {value!r} has no UTC offset (e.g. -06:00)", code="bad_time")
    return dt.timestamp()


def _vertex_count(coords: object) -> int:
    if isinstance(coords, list) and coords and isinstance(coords[0], int | float):
        return 1
    if isinstance(coords, list):
        return sum(_vertex_count(c) for c in coords)
    return 0


def _resolve_polygons(
    alert: AlertIn, settings: Settings, warnings: list[str]
) -> list[tuple[str, BaseGeometry]]:
    geometry = alert.area.geometry
    if geometry is None:
        return []
    n = _vertex_count(geometry.coordinates)
    if n > settings.max_vertices:
        raise Invalid(
            f"area.geometry has {n} vertices; the limit is {settings.max_vertices}"
            " (simplify the polygon, or use SAME county codes)",
            code="too_many_vertices",
        )
    polys = (
        geometry.coordinates
        if isinstance(geometry, MultiPolygonGeometry)
        else [geometry.coordinates]
    )
    if not polys:
        raise Invalid(
            "area.geometry: a MultiPolygon needs at least one polygon", code="invalid_geometry"
        )
    if len(polys) > settings.max_polygons:
        raise Invalid(
            f"area.geometry has {len(polys)} polygons; the limit is {settings.max_polygons}",
            code="too_many_polygons",
        )
    drawn: list[tuple[str, shapely.Polygon]] = []
    wrapped: set[str] = set()
    for i, rings in enumerate(polys):
        label = "area.geometry" if len(polys) == 1 else f"area.geometry polygon {i}"
        poly = geo.polygon_from_rings(rings, label)
        if crosses(rings):
            # Read literally this ring is a band around the world; RFC 7946 §3.1.9.
            unwrapped = unwrap_rings(rings, label)
            poly = shapely.Polygon(unwrapped[0], unwrapped[1:])
            wrapped.add(label)
        drawn.append((label, poly))
    limits = Limits(
        max_edge_pairs=settings.max_edge_pairs,
        max_line_crossings=settings.max_line_crossings,
        max_crossings=settings.max_repair_crossings,
    )
    parts: list[tuple[str, BaseGeometry]] = []
    for label, fixed, reason in check_parts(drawn, limits):
        if reason is not None:
            warnings.append(
                f"{label} was invalid ({reason}); repaired to the area its rings enclose"
            )
        if label in wrapped:
            fixed = wrap_to_world(fixed)
            warnings.append(
                f"{label} crosses the antimeridian (an edge jumps more than 180 degrees of"
                " longitude): read the short way across 180 degrees and split there"
                " (RFC 7946 section 3.1.9)"
            )
        parts.append((label, fixed))
    return parts


def _check_photos(alert: AlertIn, settings: Settings) -> None:
    if len(alert.photos) > settings.photo_max_count:
        raise Invalid(
            f"photos has {len(alert.photos)} entries; the limit is {settings.photo_max_count}",
            code="too_many_photos",
        )
    for i, photo in enumerate(alert.photos):
        if (photo.url is None) == (photo.data is None):
            raise Invalid(f"photos[{i}]: give exactly one of url or data", code="bad_photo")
    for kind, people in (("children", alert.children), ("suspects", alert.suspects)):
        for j, person in enumerate(people):
            for k in person.photos:
                if k >= len(alert.photos):
                    raise Invalid(
                        f"{kind}[{j}].photos: index {k} but the alert has"
                        f" {len(alert.photos)} photo(s)",
                        code="bad_photo",
                    )


def validate(
    alert: AlertIn,
    agency: Agency,
    geodata: GeoData,
    settings: Settings,
    *,
    now: float,
    alert_id: str | None = None,
) -> Validated:
    """Check an alert and resolve its area.

    ``alert_id`` overrides ``identifier`` as the stable id (CAP ``incidents``). The
    deployment's policy (:mod:`amber_relay.policy`) is applied first: the event must be
    accepted, test events are stored as status ``test``, ``sent`` may not lie ahead of
    ``now`` by more than ``max_clock_skew_s``, and SAME marine codes are dropped with a
    warning. Rings crossing the antimeridian are split there (RFC 7946 §3.1.9).

    Raises:
        Invalid: event not accepted, times, geometry or limits wrong (422), naming the
            field.
        Forbidden: the area reaches outside the agency's jurisdiction plus its margin
            (403), naming the part.
    """
    warnings: list[str] = []
    # Policy first: a refused event is refused whatever else is wrong with it.
    status, notes = policy.check_event(
        alert.event_code, alert.event, alert.status, settings.accepted_event_codes
    )
    warnings.extend(notes)
    expires_ts = parse_time(alert.expires, "expires")
    if expires_ts <= now:
        raise Invalid(f"expires {alert.expires} is in the past", code="expired")
    if expires_ts > now + settings.max_expires_s:
        raise Invalid(
            f"expires {alert.expires} is more than {settings.max_expires_s // 3600} h ahead",
            code="expires_too_far",
        )
    sent_ts = parse_time(alert.sent, "sent") if alert.sent else now
    if alert.sent:
        policy.check_sent(alert.sent, sent_ts, now, settings.max_clock_skew_s)
    area = alert.area
    if area.geometry is None and not area.circles and not area.same:
        raise Invalid("area needs at least one of geometry, circles or same", code="empty_area")
    same, marine = policy.split_marine_same(area.same)
    if marine:
        if area.geometry is None and not area.circles and not same:
            raise Invalid(
                f"area has only SAME marine zone codes ({', '.join(marine[:10])}): no app"
                " user is at sea; give the land counties, a polygon or a circle",
                code="marine_only_area",
            )
        warnings.append(
            f"SAME marine zone code(s) {', '.join(marine[:10])}"
            f"{' ...' if len(marine) > 10 else ''} ignored: no app user is at sea"
        )
    if len(area.circles) > settings.max_circles:
        raise Invalid(
            f"area.circles has {len(area.circles)} circles; the limit is {settings.max_circles}",
            code="too_many_circles",
        )
    if len(area.same) > settings.max_same_codes:
        raise Invalid(
            f"area.same has {len(area.same)} codes; the limit is {settings.max_same_codes}",
            code="too_many_same_codes",
        )
    for i, c in enumerate(area.circles):
        if c.radius_km > settings.max_radius_km:
            raise Invalid(
                f"area.circles[{i}].radius_km {c.radius_km} exceeds {settings.max_radius_km} km",
                code="radius_too_large",
            )
        if c.radius_km < settings.min_radius_km:
            raise Invalid(
                f"area.circles[{i}].radius_km {c.radius_km} is below {settings.min_radius_km} km",
                code="radius_too_small",
            )
    _check_photos(alert, settings)
    parts = _resolve_polygons(alert, settings, warnings)
    same_geoms, same_warnings = geodata.resolve_same(same, settings.same_widen_m)
    warnings.extend(same_warnings)
    circles = geo.distinct_circles(area.circles)
    circle_parts = [
        (f"area.circles[{area.circles.index(c)}]", wrap_to_world(geo.circle_polygon(c)))
        for c in circles
    ]
    geodata.check_jurisdiction(
        [*parts, *circle_parts], same, agency.jurisdiction, settings.jurisdiction_margin_km
    )
    pieces = [g for _, g in parts] + same_geoms
    if len(pieces) == 1 and pieces[0].is_valid:
        union = pieces[0]  # a union of one (a whole state: ~1 s for Alaska) changes nothing
    else:
        union = shapely.union_all(pieces) if pieces else None
    matched = geo.Area(union, tuple(circles))
    infos = [
        Info(
            language=alert.language,
            headline=alert.headline,
            description=alert.description,
            instruction=alert.instruction,
            short_text=alert.short_text,
            long_text=alert.long_text,
        ),
        *alert.translations,
    ]
    aid = alert_id or alert.identifier
    content = AlertContent(
        id=aid,
        version=0,
        sent=alert.sent or datetime.fromtimestamp(now).astimezone().isoformat(),
        expires=alert.expires,
        event=alert.event,
        sender_name=alert.sender_name,
        area_description=area.description,
        infos=infos,
        children=alert.children,
        suspects=alert.suspects,
        vehicles=alert.vehicles,
        last_seen=alert.last_seen,
        contact=alert.contact,
        links=alert.links,
    )
    _check_frame_size(content, alert, settings)
    record = AlertRecord(
        id=aid,
        version=0,
        agency=agency.id,
        status=status,
        expires_ts=expires_ts,
        sent_ts=sent_ts,
        polygons=geo.to_multipolygon_coords(union),
        circles=circles,
        same=same,
        content=content,
        pending_photos=alert.photos,
        regions=_regions(geodata, parts, circles, same),
        bbox=matched.bbox,
    )
    return Validated(record, warnings)


# What a photo adds to the frame once the worker has stored it: its /media link (or
# absolute URL), sha256, type and size; its caption is counted as written.
_PHOTO_FRAME_BYTES = 400


def _check_frame_size(content: AlertContent, alert: AlertIn, settings: Settings) -> None:
    size = len(msgspec.json.encode(content)) + sum(
        _PHOTO_FRAME_BYTES + len((p.caption or "").encode()) for p in alert.photos
    )
    if size > settings.max_interrupt_bytes:
        raise Invalid(
            f"the alert's interrupt frame would be {size} bytes (all languages and photo"
            f" links); the limit is {settings.max_interrupt_bytes}: shorten the texts or"
            " send fewer translations",
            code="alert_too_large",
        )


def _regions(
    geodata: GeoData,
    parts: list[tuple[str, BaseGeometry]],
    circles: list[Circle],
    same: list[str],
) -> list[str]:
    # Drawn shapes match the counties they touch; SAME codes match their own counties,
    # not the neighbours their ~100 m widening reaches into.
    drawn = shapely.union_all([g for _, g in parts]) if parts else None
    return sorted(set(geodata.counties_touching(drawn, circles)) | geodata.same_regions(same))


def complete(record: AlertRecord, geodata: GeoData) -> AlertRecord:
    """``record`` with the matching facts :func:`validate` adds (regions, bbox, circles).

    For records stored before records carried them: run off the event loop (it is
    county geometry, bounded like ``validate``'s own lookup). Records that have them
    come back unchanged.
    """
    if record.regions is not None:
        return record
    circles = geo.distinct_circles(record.circles)
    area = geo.Area.from_coords(record.polygons, circles)
    return msgspec.structs.replace(
        record,
        circles=circles,
        regions=geodata.counties_touching(area.polygons, circles),
        bbox=area.bbox,
    )
