"""The publication policy through ingest.validate: events, test events, marine codes,
clock skew, antimeridian areas and length refusals of JSON alerts."""

from __future__ import annotations

import json
from typing import Any

import pytest
import shapely

from amber_relay import ingest, policy
from amber_relay.agencies import Agency
from amber_relay.errors import Invalid
from amber_relay.geo import Area
from amber_relay.geodata import GeoData, load
from amber_relay.model import TEXT_MAX_CHARS
from amber_relay.settings import Settings
from tests.amber_relay.test_ingest import doc

NOW = 1763770000.0  # 2025-11-22T00:06:40Z
TEXAS = Agency("txdps", "0123456789abcdef0123", ("48",))
NATIONAL = Agency("ncmec", "0123456789abcdef0123", ("US",))
ALASKA = Agency("akdps", "0123456789abcdef0123", ("02",))
ATTU = (52.9, 172.9)
LONDON = (51.5, -0.13)


@pytest.fixture(scope="module")
def gd() -> GeoData:
    return load()


def check(
    d: dict[str, Any],
    gd: GeoData,
    agency: Agency = TEXAS,
    settings: Settings | None = None,
) -> ingest.Validated:
    alert = ingest.parse_json(json.dumps(d).encode())
    return ingest.validate(alert, agency, gd, settings or Settings(), now=NOW)


def test_event_code_defaults_to_cae_and_is_accepted(gd: GeoData) -> None:
    """A JSON alert without event_code is a CAE and passes the default policy."""
    assert check(doc(), gd).record.status == "actual"


def test_other_event_is_refused_naming_event_and_accepted_list(gd: GeoData) -> None:
    """A tornado warning is 422 event_not_accepted, naming the event and the list."""
    with pytest.raises(Invalid) as e:
        check(doc(event="Tornado Warning", event_code="TOR"), gd)
    assert e.value.code == "event_not_accepted"
    assert "'Tornado Warning' (SAME event code TOR)" in e.value.reason
    assert "publishes CAE only" in e.value.reason


def test_event_policy_comes_before_other_checks(gd: GeoData) -> None:
    """A refused event is refused even when it has also expired."""
    with pytest.raises(Invalid, match="event_not_accepted|not accepted"):
        check(doc(event_code="SVR", expires="2020-01-01T00:00:00-00:00"), gd)


def test_accepted_event_codes_setting_and_wildcard(gd: GeoData) -> None:
    """accepted_event_codes lists more codes; "*" accepts every code."""
    cem = doc(event="Civil Emergency Message", event_code="CEM")
    assert check(cem, gd, settings=Settings(accepted_event_codes=("CAE", "CEM"))).record
    assert check(cem, gd, settings=Settings(accepted_event_codes=("*",))).record


@pytest.mark.parametrize("code", sorted(policy.TEST_EVENT_CODES))
def test_test_events_are_never_public(gd: GeoData, code: str) -> None:
    """RMT, RWT, DMO and NPT with status actual are stored as test, with a warning."""
    v = check(doc(event_code=code), gd, settings=Settings(accepted_event_codes=("*",)))
    assert v.record.status == "test"
    assert any("never shown to the public" in w for w in v.warnings)
    with pytest.raises(Invalid, match="not accepted"):
        check(doc(event_code=code), gd)


def test_bad_event_code_is_a_schema_error() -> None:
    """event_code must be 3 capital letters."""
    with pytest.raises(Invalid, match="event_code"):
        ingest.parse_json(json.dumps(doc(event_code="cae")).encode())


def test_sent_in_the_future_is_refused_naming_the_skew(gd: GeoData) -> None:
    """A sent 7 h ahead (a time-zone slip) is 422 sent_in_future naming 7 h."""
    with pytest.raises(Invalid) as e:
        check(doc(sent="2025-11-22T07:06:40-00:00"), gd)
    assert e.value.code == "sent_in_future"
    assert "7 h 0 min ahead" in e.value.reason and "limit 300 s" in e.value.reason


def test_sent_slightly_ahead_is_accepted(gd: GeoData) -> None:
    """A sent 4 minutes ahead (clock drift) passes; the limit is a setting."""
    d = doc(sent="2025-11-22T00:10:40-00:00")
    assert check(d, gd).record
    with pytest.raises(Invalid, match="sent_in_future|ahead"):
        check(d, gd, settings=Settings(max_clock_skew_s=60))


def test_marine_same_codes_are_ignored_with_a_warning(gd: GeoData) -> None:
    """Marine zone codes next to a land county are dropped with a warning."""
    v = check(doc({"same": ["048029", "077250", "075530"]}), gd)
    assert v.record.same == ["048029"]
    assert any("077250, 075530 ignored" in w for w in v.warnings)


def test_marine_only_area_is_refused(gd: GeoData) -> None:
    """An area of marine zone codes only is 422 marine_only_area."""
    with pytest.raises(Invalid) as e:
        check(doc({"same": ["077250"]}), gd)
    assert e.value.code == "marine_only_area"


def test_unknown_land_same_code_stays_invalid(gd: GeoData) -> None:
    """An unknown land code is still 422 unknown_same_code, marine codes or not."""
    with pytest.raises(Invalid) as e:
        check(doc({"same": ["048999", "077250"]}), gd)
    assert e.value.code == "unknown_same_code"


def test_is_marine_same_parts() -> None:
    """State parts 57-59, 61, 65, 73, 75, 77, 91-98 are marine; 60, 66, 72, 78 are land."""
    marine = [f"0{p}001" for p in (57, 58, 59, 61, 65, 73, 75, 77, 91, 98)]
    land = [f"0{p}001" for p in (48, 60, 66, 69, 72, 78, 99)]
    assert all(policy.is_marine_same(c) for c in marine)
    assert not any(policy.is_marine_same(c) for c in land)


def test_json_too_long_names_field_length_and_limit() -> None:
    """A JSON description over the limit is 422 too_long naming path, length and limit."""
    with pytest.raises(Invalid) as e:
        ingest.parse_json(json.dumps(doc(description="x" * (TEXT_MAX_CHARS + 5))).encode())
    assert e.value.code == "too_long"
    assert e.value.reason == (
        f"`$.description`: {TEXT_MAX_CHARS + 5} characters; the limit is {TEXT_MAX_CHARS}"
    )


def _aleutians(settings: Settings) -> Settings:
    # The islands either side of 180 deg are ~90 km apart: an area spanning the meridian
    # lies more than 22 km from land, so these tests widen the margin.
    return settings.replace(jurisdiction_margin_km=600.0)


def test_multipolygon_split_at_the_antimeridian_matches_attu_not_london(gd: GeoData) -> None:
    """A MultiPolygon cut at 180 deg is accepted and matches Attu but not London."""
    west = [[172.0, 51.0], [180.0, 51.0], [180.0, 54.0], [172.0, 54.0], [172.0, 51.0]]
    east = [[-180.0, 51.0], [-176.0, 51.0], [-176.0, 54.0], [-180.0, 54.0], [-180.0, 51.0]]
    area = {"geometry": {"type": "MultiPolygon", "coordinates": [[west], [east]]}}
    v = check(doc(area), gd, ALASKA, _aleutians(Settings()))
    matcher = Area.from_coords(v.record.polygons, [])
    assert matcher.contains(*ATTU) and matcher.contains(52.0, -177.0)
    assert not matcher.contains(*LONDON)


def test_alaska_statewide_same_matches_anchorage_juneau_and_attu(gd: GeoData) -> None:
    """A whole-state SAME code for Alaska (both sides of 180 deg) is accepted from the
    state's own agency and matches its cities and the western Aleutians, not London."""
    v = check(doc({"same": ["002000"]}), gd, ALASKA)
    matcher = Area.from_coords(v.record.polygons, [])
    for lat, lon in [(61.218, -149.900), (58.302, -134.420), (64.838, -147.716), ATTU]:
        assert matcher.contains(lat, lon), (lat, lon)
    assert not matcher.contains(*LONDON) and not matcher.contains(47.61, -122.33)


def test_ring_jumping_over_180_is_split_not_a_band(gd: GeoData) -> None:
    """A ring drawn straight across 180 deg is split there, never a band round the world."""
    ring = [[172.0, 51.0], [-176.0, 51.0], [-176.0, 54.0], [172.0, 54.0], [172.0, 51.0]]
    area = {"geometry": {"type": "Polygon", "coordinates": [ring]}}
    v = check(doc(area), gd, ALASKA, _aleutians(Settings()))
    assert any("antimeridian" in w for w in v.warnings)
    matcher = Area.from_coords(v.record.polygons, [])
    assert matcher.contains(*ATTU) and matcher.contains(52.0, -177.0)
    assert not matcher.contains(*LONDON) and not matcher.contains(52.0, 0.0)
    total = shapely.MultiPolygon([shapely.Polygon(p[0]) for p in v.record.polygons]).area
    assert total == pytest.approx(12.0 * 3.0)


def test_ring_around_a_pole_is_refused_with_a_hint(gd: GeoData) -> None:
    """A ring whose edges go round the Earth is 422 with the RFC 7946 hint."""
    ring = [[0.0, 80.0], [120.0, 82.0], [-120.0, 80.0], [0.0, 80.0]]
    with pytest.raises(Invalid) as e:
        check(doc({"geometry": {"type": "Polygon", "coordinates": [ring]}}), gd, NATIONAL)
    assert "RFC 7946" in e.value.reason and "ring 0" in e.value.reason


def test_default_margin_refuses_an_area_across_the_aleutian_gap(gd: GeoData) -> None:
    """With the 22 km margin, an area spanning 180 deg over open sea is 403."""
    ring = [[179.0, 51.0], [-179.0, 51.0], [-179.0, 52.0], [179.0, 52.0], [179.0, 51.0]]
    with pytest.raises(Exception, match="margin"):
        check(doc({"geometry": {"type": "Polygon", "coordinates": [ring]}}), gd, ALASKA)
