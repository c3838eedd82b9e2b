"""Tests of amber_relay.geodata: the shipped county/state polygons and what is built on them."""

from __future__ import annotations

import pytest
from shapely.geometry import Point, box
from shapely.geometry.base import BaseGeometry

from amber_relay import geodata
from amber_relay.errors import Forbidden, Invalid
from amber_relay.geodata import GeoData

SAN_ANTONIO = Point(-98.4936, 29.4241)  # in Bexar county (48029), Texas
# the Texas/Oklahoma panhandle line in the data, at lon -101.25 (lat 36.5 on the ground)
TX_OK_BORDER_LAT = 36.49965


@pytest.fixture(scope="module")
def gd() -> GeoData:
    return geodata.load()


# --- load --------------------------------------------------------------------------------


def test_load_has_3230_county_geometries_and_56_states(gd: GeoData) -> None:
    """3,231 counties (3,230 with geometry: Falls Church has none) and 56 states are loaded."""
    assert len(gd.counties) == 3230
    assert len(gd.county_names) == 3231
    assert "51610" in gd.county_names and "51610" not in gd.counties
    assert len(gd.states) == 56
    assert len(gd.state_names) == 56
    assert gd.state_names["48"] == "Texas"
    assert gd.county_names["48029"] == "Bexar"


def test_load_is_cached(gd: GeoData) -> None:
    """load() reads the data once per process and returns the same object after."""
    assert geodata.load() is gd


def test_load_geometries_are_valid_polygons(gd: GeoData) -> None:
    """Every county and state geometry is a valid Polygon or MultiPolygon."""
    for code, g in [*gd.counties.items(), *gd.states.items()]:
        assert g.geom_type in ("Polygon", "MultiPolygon"), code
        assert g.is_valid, code


def test_load_aleutians_west_has_parts_both_sides_of_180_none_crossing(gd: GeoData) -> None:
    """Aleutians West (02016) has parts east and west of 180 degrees but no part spans it."""
    parts = list(gd.counties["02016"].geoms)
    assert any(p.bounds[0] > 0 for p in parts) and any(p.bounds[2] < 0 for p in parts)
    assert all(p.bounds[2] - p.bounds[0] < 5 for p in parts)


def test_load_point_in_an_overlap_is_in_both_counties(gd: GeoData) -> None:
    """Where simplification made neighbours overlap (06077/06085), a point is in both."""
    overlap = gd.counties["06077"].intersection(gd.counties["06085"])
    assert overlap.area > 0
    p = overlap.representative_point()
    assert gd.counties["06077"].contains(p) and gd.counties["06085"].contains(p)


# --- resolve_same ------------------------------------------------------------------------


def test_resolve_same_county_gives_its_polygon(gd: GeoData) -> None:
    """048029 resolves to Bexar county's polygon, with no warning."""
    geoms, warnings = gd.resolve_same(["048029"])
    assert geoms == [gd.counties["48029"]]
    assert warnings == []
    assert geoms[0].contains(SAN_ANTONIO)


def test_resolve_same_whole_state_gives_the_state(gd: GeoData) -> None:
    """048000 (county 000) resolves to all of Texas."""
    geoms, warnings = gd.resolve_same(["048000"])
    assert geoms == [gd.states["48"]]
    assert warnings == []


def test_resolve_same_part_digit_gives_whole_county_with_warning(gd: GeoData) -> None:
    """148029 (part 1 of Bexar) resolves to the whole county and warns about it."""
    geoms, warnings = gd.resolve_same(["148029"])
    assert geoms == [gd.counties["48029"]]
    assert len(warnings) == 1
    assert "148029" in warnings[0] and "part 1" in warnings[0] and "48029" in warnings[0]


def test_resolve_same_falls_church_gives_fairfax(gd: GeoData) -> None:
    """051610 Falls Church (no geometry at 1:10m) resolves to Fairfax (51059), which holds it."""
    geoms, _ = gd.resolve_same(["051610"])
    assert geoms == [gd.counties["51059"]]
    assert geoms[0].contains(Point(-77.1711, 38.8823))  # Falls Church city hall


def test_resolve_same_ct_planning_region_gives_connecticut_with_warning(gd: GeoData) -> None:
    """009110 (a 2022 Connecticut planning region) resolves to all of Connecticut, warning."""
    geoms, warnings = gd.resolve_same(["009110"])
    assert geoms == [gd.states["09"]]
    assert len(warnings) == 1
    assert "09110" in warnings[0] and "Connecticut" in warnings[0]


@pytest.mark.parametrize(
    ("same", "old"),
    [("002063", "02261"), ("002066", "02261"), ("046113", "46102"), ("002270", "02158")],
)
def test_resolve_same_newer_or_renamed_code_gives_2017_county_with_warning(
    gd: GeoData, same: str, old: str
) -> None:
    """Codes newer than the 2017 vintage resolve to the county that covers them, with a warning."""
    geoms, warnings = gd.resolve_same([same])
    assert geoms == [gd.counties[old]]
    assert len(warnings) == 1
    assert old in warnings[0] and gd.county_names[old] in warnings[0]


def test_resolve_same_unknown_code_is_invalid_naming_it(gd: GeoData) -> None:
    """048999 (no such Texas county) is refused, naming the code; known codes don't hide it."""
    with pytest.raises(Invalid) as e:
        gd.resolve_same(["048029", "048999"])
    assert e.value.code == "unknown_same_code"
    assert "048999" in e.value.reason and "048029" not in e.value.reason
    with pytest.raises(Invalid, match="099000"):
        gd.resolve_same(["099000"])


def test_resolve_same_several_codes_in_order(gd: GeoData) -> None:
    """Several codes give one geometry each, in order."""
    geoms, _ = gd.resolve_same(["048029", "048453", "040000"])
    assert geoms == [gd.counties["48029"], gd.counties["48453"], gd.states["40"]]


# --- check_jurisdiction ------------------------------------------------------------------


def test_check_jurisdiction_polygon_inside_texas_passes(gd: GeoData) -> None:
    """A Texas agency's polygon around San Antonio is within its jurisdiction."""
    gd.check_jurisdiction([("area.geometry", box(-98.75, 29.25, -98.25, 29.75))], [], ["48"])


def test_check_jurisdiction_polygon_into_oklahoma_is_forbidden_naming_it(gd: GeoData) -> None:
    """A Texas agency's polygon reaching into Oklahoma is refused, naming Oklahoma (40)."""
    poly = box(-101.5, 36.0, -101.0, 37.0)
    with pytest.raises(Forbidden) as e:
        gd.check_jurisdiction([("area.geometry polygon 1", poly)], [], ["48"])
    assert e.value.status == 403
    assert "area.geometry polygon 1" in e.value.reason
    assert "Oklahoma (40)" in e.value.reason


def test_check_jurisdiction_multi_state_agency_may_cross_its_states(gd: GeoData) -> None:
    """An agency with Texas and Oklahoma may post a polygon over their shared border."""
    gd.check_jurisdiction([("g", box(-101.5, 36.0, -101.0, 37.0))], [], ["48", "40"])


def test_check_jurisdiction_same_in_another_state_is_forbidden(gd: GeoData) -> None:
    """A Texas agency may not send SAME codes of Oklahoma counties (or Oklahoma as a whole)."""
    with pytest.raises(Forbidden, match=r"SAME 040109 is in Oklahoma \(40\)"):
        gd.check_jurisdiction([], ["048029", "040109"], ["48"])
    with pytest.raises(Forbidden, match="Oklahoma"):
        gd.check_jurisdiction([], ["040000"], ["48"])
    gd.check_jurisdiction([], ["048029", "148029", "048000"], ["48"])


def test_check_jurisdiction_us_allows_any_state_and_territory(gd: GeoData) -> None:
    """["US"] allows areas across states, in Puerto Rico and Guam, and any state's SAME code."""
    gd.check_jurisdiction(
        [
            ("g", box(-101.5, 36.0, -101.0, 37.0)),
            ("pr", box(-66.2, 18.3, -66.0, 18.45)),
            ("gu", box(144.7, 13.4, 144.8, 13.5)),
        ],
        ["040109", "006037"],
        ["US"],
    )


@pytest.mark.parametrize(
    ("label", "poly", "where"),
    [
        ("toronto", box(-79.5, 43.6, -79.3, 43.75), "43."),
        ("atlantic", box(-40.0, 30.0, -39.0, 31.0), "30."),
        ("iceland", box(-22.1, 64.0, -21.7, 64.2), "64."),
    ],
)
def test_check_jurisdiction_us_refuses_areas_outside_the_us(
    gd: GeoData, label: str, poly: BaseGeometry, where: str
) -> None:
    """["US"] refuses Toronto, the open Atlantic and Reykjavik, naming the part and a point."""
    with pytest.raises(Forbidden) as e:
        gd.check_jurisdiction([(label, poly)], [], ["US"])
    assert e.value.reason.startswith(f"{label} reaches outside the United States")
    assert f"e.g. at {where}" in e.value.reason


def test_check_jurisdiction_texas_and_northern_mexico_is_refused(gd: GeoData) -> None:
    """A Texas polygon reaching 100 km into Mexico is refused, naming a point in Mexico."""
    poly = box(-100.6, 27.0, -99.5, 28.2)  # Laredo plus Nuevo Leon/Coahuila to the south
    with pytest.raises(Forbidden) as e:
        gd.check_jurisdiction([("area.geometry", poly)], [], ["48"])
    assert "area.geometry reaches outside Texas (48) and its 22.2 km margin" in e.value.reason


def test_check_jurisdiction_coast_within_the_margin_passes(gd: GeoData) -> None:
    """A circle off Galveston reaching 15 km out to sea is within the 22 km margin."""
    gd.check_jurisdiction([("c", box(-94.9, 29.2, -94.7, 29.35))], [], ["48"])
    with pytest.raises(Forbidden, match="margin"):
        gd.check_jurisdiction([("c", box(-94.0, 28.0, -93.8, 28.2))], [], ["48"])


def test_check_jurisdiction_alaska_north_of_the_coast_is_refused(gd: GeoData) -> None:
    """An Alaska area over the Arctic Ocean well north of the coast is refused."""
    with pytest.raises(Forbidden, match="Alaska"):
        gd.check_jurisdiction([("a", box(-150.0, 72.5, -149.0, 73.0))], [], ["02"])
    gd.check_jurisdiction([("a", box(-150.0, 70.2, -149.5, 70.4))], [], ["02"])


def test_check_jurisdiction_border_tolerance_passes_polygon_just_over(gd: GeoData) -> None:
    """A polygon over the state line by 550 m (within the 0.02 deg tolerance) passes."""
    over = TX_OK_BORDER_LAT + 0.005  # 556 m north of the line in the data
    poly = box(-101.5, 36.0, -101.0, over)
    assert not gd.states["48"].covers(poly)
    assert gd.states["40"].intersects(poly)
    gd.check_jurisdiction([("g", poly)], [], ["48"])
    # and the same polygon 5.5 km over is refused
    with pytest.raises(Forbidden, match="Oklahoma"):
        gd.check_jurisdiction(
            [("g", box(-101.5, 36.0, -101.0, TX_OK_BORDER_LAT + 0.05))], [], ["48"]
        )


def test_check_jurisdiction_checks_every_part(gd: GeoData) -> None:
    """The first offending part is named even when an earlier part is fine."""
    parts = [
        ("area.circles[0]", box(-98.6, 29.3, -98.4, 29.5)),
        ("area.circles[1]", box(-97.0, 36.8, -96.5, 37.2)),
    ]
    with pytest.raises(Forbidden, match=r"area\.circles\[1\] reaches into .*Oklahoma"):
        gd.check_jurisdiction(parts, [], ["48"])


def test_check_jurisdiction_coastal_area_reaching_the_sea_passes(gd: GeoData) -> None:
    """A Texas area that reaches over Galveston Bay and the Gulf (no other state) passes."""
    gd.check_jurisdiction([("area.circles[0]", box(-95.8, 29.4, -94.9, 30.1))], [], ["48"])
