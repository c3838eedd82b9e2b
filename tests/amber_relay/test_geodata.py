"""Tests of amber_relay.geodata: the shipped county/state polygons and what is built on them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
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


def test_load_has_every_county_of_both_vintages_and_56_states(gd: GeoData) -> None:
    """3,233 counties of 2016 plus 11 newer codes (3,244), each with its own outline; 56 states."""
    assert len(gd.counties) == 3244
    assert set(gd.county_names) == set(gd.counties)
    for code in ("51610", "60030", "60040", "02261", "02063", "02066", "09001", "09110"):
        assert code in gd.counties, code
    assert len(gd.states) == 56
    assert gd.state_names["48"] == "Texas"
    assert gd.county_names["48029"] == "Bexar"


def test_load_is_cached(gd: GeoData) -> None:
    """load() maps the data once per process and returns the same object after."""
    assert geodata.load() is gd


def test_load_geometries_are_valid_polygons(gd: GeoData) -> None:
    """Every county and state geometry is a valid, non-empty Polygon or MultiPolygon."""
    for code in [*gd.counties, *gd.states]:
        g = gd.counties[code] if len(code) == 5 else gd.states[code]
        assert g.geom_type in ("Polygon", "MultiPolygon"), code
        assert g.is_valid and not g.is_empty, code


def test_load_bounds_without_building_match_the_geometry(gd: GeoData) -> None:
    """The file's boxes (used by the indexes, no geometry built) hold each outline."""
    for code in ("48029", "02016", "60040", "09110"):
        x0, y0, x1, y1 = gd.counties.bounds(code)
        b = gd.counties[code].bounds
        assert x0 <= b[0] and y0 <= b[1] and x1 >= b[2] and y1 >= b[3]
        assert max(abs(p - q) for p, q in zip((x0, y0, x1, y1), b, strict=True)) < 1e-6


def test_load_counties_are_built_lazily_into_a_bounded_cache() -> None:
    """A fresh GeoData builds no county until asked, and keeps at most its vertex budget."""
    gd = geodata.from_boundaries(geodata.load().counties._data)
    cache = gd.counties._cache
    assert cache is not None and len(cache) == 0
    assert "48029" in gd.counties and len(cache) == 0
    gd.counties_intersecting((-99.0, 29.0, -98.0, 30.0))
    assert len(cache) == 0
    for code in list(gd.counties)[:600]:
        gd.counties[code]
    assert 0 < cache.vertices <= cache.max_vertices


def test_load_aleutians_west_has_parts_both_sides_of_180_none_crossing(gd: GeoData) -> None:
    """Aleutians West (02016) has parts east and west of 180 degrees but no part spans it."""
    parts = list(gd.counties["02016"].geoms)
    assert any(p.bounds[0] > 0 for p in parts) and any(p.bounds[2] < 0 for p in parts)
    assert all(p.bounds[2] - p.bounds[0] < 5 for p in parts)


# --- resolve_same ------------------------------------------------------------------------


def test_resolve_same_county_gives_its_outline_widened(gd: GeoData) -> None:
    """048029 resolves to Bexar's outline widened by same_widen_m, with no warning."""
    geoms, warnings = gd.resolve_same(["048029"])
    assert warnings == []
    assert geoms[0].covers(gd.counties["48029"])
    assert geoms[0].contains(SAN_ANTONIO)
    (exact,), _ = gd.resolve_same(["048029"], widen_m=0.0)
    assert exact is gd.counties["48029"]


def test_resolve_same_widening_is_in_metres_at_any_latitude(gd: GeoData) -> None:
    """100 m widening reaches 95 m but not 160 m past the line at 29 N as at 70 N (not degrees)."""
    for code in ("48029", "02185"):  # Bexar TX, North Slope AK
        (area,), _ = gd.resolve_same(["0" + code])
        outline = gd.counties[code]
        x0, y0, x1, y1 = outline.bounds
        lat = (y0 + y1) / 2
        k = np.array([111_195.0 * math.cos(math.radians(lat)), 111_195.0])
        flat = shapely.transform(outline, lambda xy, k=k: xy * k)
        row = shapely.intersection(outline, shapely.box(x0 - 1, lat, x1 + 1, lat + 1e-9))
        seen = set()
        for step_m in range(10, 3000, 5):
            p = Point(row.bounds[2] + step_m / k[0], lat)
            d = flat.distance(Point(p.x * k[0], p.y * k[1]))  # metres, 0.5 % accurate
            if d <= 95:
                assert area.contains(p), (code, d)
                seen.add("in")
            elif d >= 160:
                assert not area.contains(p), (code, d)
                seen.add("out")
        assert seen == {"in", "out"}


def test_resolve_same_whole_state_gives_the_state_widened(gd: GeoData) -> None:
    """048000 (county 000) resolves to all of Texas, widened."""
    geoms, warnings = gd.resolve_same(["048000"])
    assert geoms[0].covers(gd.states["48"])
    assert warnings == []


def test_resolve_same_part_digit_gives_whole_county_with_warning(gd: GeoData) -> None:
    """148029 (part 1 of Bexar) resolves to the whole county and warns about it."""
    geoms, warnings = gd.resolve_same(["148029"])
    assert geoms == gd.resolve_same(["048029"])[0]
    assert len(warnings) == 1
    assert "148029" in warnings[0] and "part 1" in warnings[0] and "48029" in warnings[0]


def test_resolve_same_falls_church_is_its_own_city_not_fairfax(gd: GeoData) -> None:
    """051610 Falls Church resolves to the city (2 km2), not to Fairfax around it."""
    (area,), warnings = gd.resolve_same(["051610"])
    assert warnings == []
    assert area.contains(Point(-77.1711, 38.8823))  # Falls Church city hall
    assert not area.contains(Point(-77.3064, 38.8462))  # Fairfax city, in Fairfax county
    assert area.area < 0.001


@pytest.mark.parametrize(
    ("code", "point"), [("060030", (-168.144, -14.541)), ("060040", (-171.083, -11.053))]
)
def test_resolve_same_rose_and_swains_islands_have_their_own_outline(
    gd: GeoData, code: str, point: tuple[float, float]
) -> None:
    """American Samoa's Rose Island (60030) and Swains Island (60040) resolve, each to itself."""
    (area,), warnings = gd.resolve_same([code])
    assert warnings == []
    assert area.distance(Point(*point)) < 0.02
    assert area.area < 0.01


def test_resolve_same_ct_planning_region_is_its_own_area_with_true_warning(gd: GeoData) -> None:
    """009110 (Capitol planning region) is not all of Connecticut; the warning says 1:10m, 2 km."""
    (area,), warnings = gd.resolve_same(["009110"])
    hartford, new_haven = Point(-72.6851, 41.7637), Point(-72.9279, 41.3083)
    assert area.contains(hartford) and not area.contains(new_haven)
    assert area.area < gd.states["09"].area / 3
    assert len(warnings) == 1
    assert "09110" in warnings[0] and "1:10m" in warnings[0] and "2 km" in warnings[0]
    assert "newer" in warnings[0]


def test_resolve_same_old_ct_county_is_its_own_area_and_called_retired(gd: GeoData) -> None:
    """009009 (New Haven County, retired 2022) resolves to its own outline, called retired."""
    (area,), warnings = gd.resolve_same(["009009"])
    assert area.contains(Point(-72.9279, 41.3083)) and not area.contains(Point(-72.6851, 41.7637))
    assert len(warnings) == 1 and "retired" in warnings[0] and "2022" in warnings[0]
    assert "newer" not in warnings[0]


def test_resolve_same_valdez_cordova_and_its_successors_are_distinct(gd: GeoData) -> None:
    """02261 (retired 2019), 02063 Chugach and 02066 Copper River each resolve to their own area."""
    (old,), w_old = gd.resolve_same(["002261"])
    (chugach,), w_ch = gd.resolve_same(["002063"])
    (copper,), w_cr = gd.resolve_same(["002066"])
    valdez, glennallen = Point(-146.3483, 61.1309), Point(-145.5461, 62.1092)
    assert old.contains(valdez) and old.contains(glennallen)
    assert chugach.contains(valdez) and not chugach.contains(glennallen)
    assert copper.contains(glennallen) and not copper.contains(valdez)
    assert "retired" in w_old[0] and "2019" in w_old[0]
    assert "newer" in w_ch[0] and "10 km" in w_ch[0] and "Valdez-Cordova" in w_ch[0]
    assert "newer" in w_cr[0]


@pytest.mark.parametrize(("same", "new"), [("046113", "46102"), ("002270", "02158")])
def test_resolve_same_renamed_code_gives_the_new_county_with_warning(
    gd: GeoData, same: str, new: str
) -> None:
    """Codes retired by a renaming resolve to the renamed county, saying so."""
    geoms, warnings = gd.resolve_same([same])
    assert geoms == gd.resolve_same(["0" + new])[0]
    assert len(warnings) == 1
    assert "retired" in warnings[0] and "renamed" in warnings[0] and new in warnings[0]


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
    assert [g.contains(p) for g, p in zip(geoms, [SAN_ANTONIO] * 3, strict=True)] == [
        True,
        False,
        False,
    ]
    assert geoms[2].covers(gd.states["40"])


# --- check_jurisdiction ------------------------------------------------------------------


def test_same_regions_are_the_named_counties_not_the_widened_neighbours(gd: GeoData) -> None:
    """A SAME county code is for its own county's region clients, not its neighbours'."""
    assert gd.same_regions(["048029"]) == {"48029"}
    widened = gd.resolve_same(["048029"])[0][0]
    assert "48013" in gd.counties_touching(widened, ())  # Atascosa, across the widened line


def test_same_regions_whole_state_and_other_vintage(gd: GeoData) -> None:
    """A whole-state code names every county; a CT region names the old counties it overlaps."""
    assert gd.same_regions(["048000"]) == {c for c in gd.counties if c.startswith("48")}
    ct = gd.same_regions(["009110"])
    assert "09110" in ct and any(c in ct for c in ("09001", "09003", "09009", "09013"))


def test_states_touching_an_empty_geometry_is_none(gd: GeoData) -> None:
    """An empty geometry (a circle of radius 1e-196 km, say) touches no state, no crash."""
    assert gd.states_touching(shapely.Polygon()) == []


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
