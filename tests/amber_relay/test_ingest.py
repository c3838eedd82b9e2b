"""Tests of amber_relay.ingest: JSON alert parsing and validation into a record."""

from __future__ import annotations

import json
from typing import Any

import pytest

from amber_relay import ingest
from amber_relay.agencies import Agency
from amber_relay.errors import Forbidden, Invalid, Malformed, Rejected
from amber_relay.geo import Area
from amber_relay.geodata import GeoData, load
from amber_relay.model import Circle
from amber_relay.settings import Settings

NOW = 1763770000.0  # 2025-11-22T00:06:40Z
EXPIRES = "2025-11-22T15:00:00-06:00"  # 20 h 53 min after NOW
TEXAS = Agency("txdps", "0123456789abcdef0123", ("48",))
BEXAR_POINT = (29.4241, -98.4936)  # San Antonio (lat, lon)
AUSTIN_POINT = (30.2672, -97.7431)
DALLAS_POINT = (32.7767, -96.797)
EL_PASO_POINT = (31.7619, -106.485)
AUSTIN_SQUARE = [[[-97.9, 30.1], [-97.6, 30.1], [-97.6, 30.4], [-97.9, 30.4], [-97.9, 30.1]]]


@pytest.fixture(scope="module")
def gd() -> GeoData:
    return load()


def doc(area: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """A JSON alert document with defaults for the required fields."""
    d: dict[str, Any] = {
        "identifier": "TX-2025-0042",
        "status": "actual",
        "headline": "AMBER Alert: Jane Doe, 7",
        "expires": EXPIRES,
        "area": area if area is not None else {"same": ["048029"]},
    }
    d.update(fields)
    return d


def body(d: dict[str, Any]) -> bytes:
    return json.dumps(d).encode()


def check(
    d: dict[str, Any], gd: GeoData, settings: Settings | None = None, **kw: Any
) -> ingest.Validated:
    return ingest.validate(
        ingest.parse_json(body(d)), TEXAS, gd, settings or Settings(), now=NOW, **kw
    )


# --- parse_json --------------------------------------------------------------------------


def test_parse_json_good_alert_gives_alert_in() -> None:
    """A well-formed alert decodes into AlertIn with its area parts typed."""
    alert = ingest.parse_json(
        body(doc({"circles": [{"lat": 29.4, "lon": -98.5, "radius_km": 40}], "same": ["048029"]}))
    )
    assert alert.identifier == "TX-2025-0042"
    assert alert.area.circles == [Circle(lat=29.4, lon=-98.5, radius_km=40.0)]
    assert alert.area.same == ["048029"]
    assert alert.area.geometry is None


def test_parse_json_bad_utf8_is_malformed_with_offset() -> None:
    """Bytes that are not UTF-8 are Malformed (bad_utf8), naming the byte and its offset."""
    raw = b'{"identifier": "TX-\xff"}'
    with pytest.raises(Malformed) as e:
        ingest.parse_json(raw)
    assert e.value.code == "bad_utf8"
    assert e.value.status == 400
    assert "0xff" in e.value.reason and "offset 19" in e.value.reason


@pytest.mark.parametrize(
    "raw", [b"", b"{", b'{"identifier": }', b"not json", b'{"identifier": "x",}']
)
def test_parse_json_malformed_json_is_malformed(raw: bytes) -> None:
    """Text that is not JSON is Malformed (bad_json), 400."""
    with pytest.raises(Malformed) as e:
        ingest.parse_json(raw)
    assert e.value.code == "bad_json"
    assert e.value.status == 400


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"identifier": 42}, "$.identifier"),
        ({"status": "real"}, "$.status"),
        (
            {"area": {"circles": [{"lat": 29.4, "lon": -98.5, "radius_km": "40"}]}},
            "$.area.circles[0].radius_km",
        ),
        (
            {"area": {"circles": [{"lat": 95, "lon": -98.5, "radius_km": 4}]}},
            "$.area.circles[0].lat",
        ),
        ({"area": {"same": ["48029"]}}, "$.area.same[0]"),
        ({"area": {"geometry": {"type": "Point", "coordinates": [0, 0]}}}, "$.area.geometry.type"),
    ],
)
def test_parse_json_wrong_types_are_invalid_with_json_path(
    change: dict[str, Any], path: str
) -> None:
    """JSON of the wrong shape is Invalid (422, code schema), naming the $.path at fault."""
    with pytest.raises(Invalid) as e:
        ingest.parse_json(body(doc(**change)))
    assert e.value.code == "schema"
    assert e.value.status == 422
    assert f"`{path}`" in e.value.reason


def test_parse_json_missing_required_field_is_invalid() -> None:
    """A missing required field is Invalid, naming the field."""
    d = doc()
    del d["expires"]
    with pytest.raises(Invalid, match="missing required field `expires`"):
        ingest.parse_json(body(d))


def test_parse_json_unknown_field_is_invalid() -> None:
    """An unknown field, at the top or nested, is Invalid, naming it and where it is."""
    with pytest.raises(Invalid, match="unknown field `colour`"):
        ingest.parse_json(body(doc(colour="red")))
    with pytest.raises(Invalid, match=r"unknown field `radius`.*`\$\.area\.circles\[0\]`"):
        ingest.parse_json(body(doc({"circles": [{"lat": 29.4, "lon": -98.5, "radius": 4}]})))


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"identifier": "x", "area": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        body(doc({"geometry": {"type": "Polygon", "coordinates": []}})).replace(
            b"[]", b"[" * 100_000 + b"]" * 100_000
        ),
        b'{"a": ' * 100_000 + b"1" + b"}" * 100_000,
    ],
    ids=["array", "area", "coordinates", "objects"],
)
def test_parse_json_deep_nesting_is_rejected_not_a_crash(raw: bytes) -> None:
    """100,000 levels of nesting, wherever they are, give a Rejected error, not a crash."""
    with pytest.raises(Rejected) as e:
        ingest.parse_json(raw)
    assert e.value.status in (400, 422)


# --- parse_time --------------------------------------------------------------------------


def test_parse_time_requires_an_offset() -> None:
    """RFC 3339 times with an offset (or Z) parse; without one or unparsable are Invalid."""
    assert ingest.parse_time("2025-11-22T00:06:40Z", "t") == NOW
    assert ingest.parse_time("2025-11-21T18:06:40-06:00", "t") == NOW
    with pytest.raises(Invalid, match="has no UTC offset") as e:
        ingest.parse_time("2025-11-22T00:06:40", "expires")
    assert e.value.code == "bad_time"
    with pytest.raises(Invalid, match="not an RFC 3339 time"):
        ingest.parse_time("tomorrow", "expires")


# --- validate ----------------------------------------------------------------------------


def test_validate_good_alert_resolves_polygon_circle_and_same(gd: GeoData) -> None:
    """Polygon + circle + SAME give a record whose area holds each part and nothing else."""
    d = doc(
        {
            "geometry": {"type": "Polygon", "coordinates": AUSTIN_SQUARE},
            "circles": [{"lat": DALLAS_POINT[0], "lon": DALLAS_POINT[1], "radius_km": 30}],
            "same": ["048029"],
            "description": "Bexar county, Austin, Dallas",
        },
        sent="2025-11-22T00:00:00Z",
    )
    v = check(d, gd)
    assert v.warnings == []
    rec = v.record
    assert rec.id == "TX-2025-0042" and rec.version == 0 and rec.agency == "txdps"
    assert rec.status == "actual"
    assert rec.expires_ts == NOW - 6 * 60 - 40 + 21 * 3600
    assert rec.sent_ts == NOW - 400
    assert rec.same == ["048029"]
    assert rec.circles == [Circle(lat=DALLAS_POINT[0], lon=DALLAS_POINT[1], radius_km=30.0)]
    polygons = Area.from_coords(rec.polygons, [])
    assert polygons.contains(*BEXAR_POINT)
    assert polygons.contains(*AUSTIN_POINT)
    assert not polygons.contains(*DALLAS_POINT)  # the circle stays a circle
    area = Area.from_coords(rec.polygons, rec.circles)
    assert area.contains(*DALLAS_POINT)
    assert not area.contains(*EL_PASO_POINT)
    assert rec.content.id == rec.id and rec.content.version == 0
    assert rec.content.headline == "AMBER Alert: Jane Doe, 7"
    assert rec.content.area_description == "Bexar county, Austin, Dallas"


@pytest.mark.parametrize(
    ("expires", "code"),
    [
        ("2025-11-21T00:00:00Z", "expired"),
        ("2025-11-22T00:06:40Z", "expired"),  # == now
        ("2025-12-01T00:00:00Z", "expires_too_far"),  # > 7 days
        ("2025-11-22T15:00:00", "bad_time"),  # no offset
        ("next week", "bad_time"),
    ],
)
def test_validate_bad_expires_is_invalid(gd: GeoData, expires: str, code: str) -> None:
    """expires in the past, beyond max_expires_s, or without an offset is Invalid."""
    with pytest.raises(Invalid) as e:
        check(doc(expires=expires), gd)
    assert e.value.code == code
    assert "expires" in e.value.reason


def test_validate_expires_limit_follows_settings(gd: GeoData) -> None:
    """max_expires_s bounds expires: 1 h allows 59 min ahead and refuses 61."""
    s = Settings(max_expires_s=3600)
    check(doc(expires="2025-11-22T01:05:40Z"), gd, s)
    with pytest.raises(Invalid, match="more than 1 h ahead"):
        check(doc(expires="2025-11-22T01:07:40Z"), gd, s)


def test_validate_sent_without_offset_is_invalid(gd: GeoData) -> None:
    """A sent time without offset is Invalid like expires."""
    with pytest.raises(Invalid, match="sent"):
        check(doc(sent="2025-11-22T00:00:00"), gd)


def test_validate_empty_area_is_invalid(gd: GeoData) -> None:
    """An area with none of geometry, circles or same is Invalid (empty_area)."""
    with pytest.raises(Invalid) as e:
        check(doc({"description": "somewhere"}), gd)
    assert e.value.code == "empty_area"


def test_validate_empty_multipolygon_is_invalid(gd: GeoData) -> None:
    """A MultiPolygon with no polygons (and nothing else) is refused as an empty area."""
    with pytest.raises(Invalid):
        check(doc({"geometry": {"type": "MultiPolygon", "coordinates": []}}), gd)


def test_validate_too_many_vertices_is_invalid(gd: GeoData) -> None:
    """A polygon over max_vertices (10 here, counting every position) is Invalid."""
    ring = [[-98.6 + 0.01 * i, 29.3] for i in range(9)] + [[-98.5, 29.5], [-98.6, 29.3]]
    d = doc({"geometry": {"type": "Polygon", "coordinates": [ring]}})
    with pytest.raises(Invalid) as e:
        check(d, gd, Settings(max_vertices=10))
    assert e.value.code == "too_many_vertices"
    assert "11 vertices" in e.value.reason and "limit is 10" in e.value.reason
    check(d, gd, Settings(max_vertices=11))


def test_validate_too_many_polygons_circles_or_codes_is_invalid(gd: GeoData) -> None:
    """More polygons, circles or SAME codes than the limits allow are Invalid."""
    s = Settings(max_polygons=1, max_circles=1, max_same_codes=1)
    two_polys = {"type": "MultiPolygon", "coordinates": [AUSTIN_SQUARE, AUSTIN_SQUARE]}
    c = {"lat": 29.4, "lon": -98.5, "radius_km": 1}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"geometry": two_polys}, "too_many_polygons"),
        ({"circles": [c, c]}, "too_many_circles"),
        ({"same": ["048029", "048453"]}, "too_many_same_codes"),
    ]
    for area, code in cases:
        with pytest.raises(Invalid) as e:
            check(doc(area), gd, s)
        assert e.value.code == code


def test_validate_self_intersecting_bowtie_is_accepted_with_warning(gd: GeoData) -> None:
    """A bowtie polygon is repaired to both lobes and accepted, with a warning saying so."""
    bowtie = [[[-98.6, 29.3], [-98.4, 29.5], [-98.4, 29.3], [-98.6, 29.4], [-98.6, 29.3]]]
    v = check(doc({"geometry": {"type": "Polygon", "coordinates": bowtie}}), gd)
    assert len(v.warnings) == 1
    assert "area.geometry was invalid" in v.warnings[0]
    assert "Self-intersection" in v.warnings[0]
    area = Area.from_coords(v.record.polygons, [])
    assert area.contains(29.35, -98.59) and area.contains(29.45, -98.41)  # both lobes
    assert not area.contains(29.48, -98.59)


def test_validate_warnings_of_same_codes_are_reported(gd: GeoData) -> None:
    """Approximations of SAME codes (part of a county) come back as warnings."""
    v = check(doc({"same": ["148029"]}), gd)
    assert len(v.warnings) == 1 and "148029" in v.warnings[0]


def test_validate_unknown_same_code_is_invalid(gd: GeoData) -> None:
    """A SAME code naming no county is Invalid, naming it."""
    with pytest.raises(Invalid, match="048999"):
        check(doc({"same": ["048999"]}), gd)


def test_validate_radius_over_max_is_invalid(gd: GeoData) -> None:
    """A circle's radius over max_radius_km is Invalid, naming the circle."""
    c = {"lat": 29.4, "lon": -98.5, "radius_km": 50.5}
    with pytest.raises(Invalid) as e:
        check(
            doc({"circles": [{"lat": 29.4, "lon": -98.5, "radius_km": 1}, c]}),
            gd,
            Settings(max_radius_km=50.0),
        )
    assert e.value.code == "radius_too_large"
    assert "area.circles[1].radius_km 50.5" in e.value.reason


def test_validate_radius_under_min_is_invalid(gd: GeoData) -> None:
    """A vanishing radius (1e-196 km, found by fuzzing) is Invalid, not a GEOS crash."""
    c = {"lat": 30.0, "lon": -97.0, "radius_km": 2.3e-196}
    with pytest.raises(Invalid) as e:
        check(doc({"circles": [{"lat": 29.4, "lon": -98.5, "radius_km": 1}, c]}), gd)
    assert e.value.code == "radius_too_small"
    assert "area.circles[1].radius_km" in e.value.reason


def test_validate_outside_jurisdiction_is_forbidden(gd: GeoData) -> None:
    """A Texas agency's area in Oklahoma is Forbidden (403), polygon and SAME alike."""
    okc = [[[-97.6, 35.4], [-97.4, 35.4], [-97.4, 35.6], [-97.6, 35.6], [-97.6, 35.4]]]
    with pytest.raises(Forbidden, match="Oklahoma"):
        check(doc({"geometry": {"type": "Polygon", "coordinates": okc}}), gd)
    with pytest.raises(Forbidden, match="Oklahoma"):
        check(doc({"same": ["040109"]}), gd)
    with pytest.raises(Forbidden, match=r"area\.circles\[0\]"):
        check(doc({"circles": [{"lat": 35.5, "lon": -97.5, "radius_km": 10}]}), gd)


def test_validate_alert_id_overrides_identifier(gd: GeoData) -> None:
    """alert_id (CAP incidents) becomes the record's and content's id."""
    v = check(doc(), gd, alert_id="INC-2025-7")
    assert v.record.id == "INC-2025-7"
    assert v.record.content.id == "INC-2025-7"


def test_validate_is_pure_and_repeatable(gd: GeoData) -> None:
    """The same alert validated twice at the same now gives equal records."""
    d = doc(sent="2025-11-22T00:00:00Z")
    assert check(d, gd).record == check(d, gd).record


def test_validate_coastal_circle_is_accepted(gd: GeoData) -> None:
    """A Texas agency's 40 km circle around downtown Houston (reaching the bay) is accepted."""
    v = check(doc({"circles": [{"lat": 29.7604, "lon": -95.3698, "radius_km": 40}]}), gd)
    assert v.record.circles[0].radius_km == 40.0


def test_validate_interrupt_frame_over_the_limit_is_invalid(gd: GeoData) -> None:
    """An alert whose frame would pass max_interrupt_bytes (long texts) is alert_too_large."""
    d = doc({"circles": [{"lat": 29.4, "lon": -98.5, "radius_km": 5}]})
    d["description"] = "x" * 9000
    d["translations"] = [
        {"language": lang, "headline": "h", "description": "y" * 9000} for lang in ("es", "fr")
    ]
    check(d, gd)  # ~27 KB: fits the default 64 KiB
    with pytest.raises(Invalid) as e:
        check(d, gd, Settings(max_interrupt_bytes=20_000))
    assert e.value.code == "alert_too_large"
    assert "the limit is 20000" in e.value.reason
