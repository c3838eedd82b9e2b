"""Tests of amber_relay.geo: distances, exact area matching, polygon checks and repair."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from shapely.geometry import Point, Polygon, box

from amber_relay import geo
from amber_relay.errors import Invalid
from amber_relay.geodata import load
from amber_relay.model import Circle

R = geo.EARTH_RADIUS_KM
KM_PER_DEG_LAT = math.pi * R / 180.0
BEARINGS = (0.0, 45.0, 90.0, 135.0, 180.0, 225.0, 270.0, 315.0, 17.0, 301.0)

# geo._circle_distance_km calls shapely.ops.transform, deprecated in shapely 2.2 (a reported
# bug, pinned by test_area_intersects_geometry_circle_emits_no_deprecation_warning); the
# tests of what intersects_geometry answers for circles look past that warning.
ignore_ops_transform = pytest.mark.filterwarnings(
    "ignore:The 'shapely.ops.transform\\(\\)' function is deprecated:DeprecationWarning"
)


def destination(lat: float, lon: float, bearing_deg: float, dist_km: float) -> tuple[float, float]:
    """(lat, lon) reached from (lat, lon) along ``bearing_deg`` after ``dist_km`` on the sphere."""
    p1, l1 = math.radians(lat), math.radians(lon)
    b, d = math.radians(bearing_deg), dist_km / R
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(
        math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2)
    )
    return math.degrees(p2), (math.degrees(l2) + 540.0) % 360.0 - 180.0


def square(lon0: float, lat0: float, lon1: float, lat1: float) -> list[list[list[float]]]:
    return [[[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]]


# --- haversine ---------------------------------------------------------------------------


def test_haversine_km_one_degree_of_latitude() -> None:
    """One degree along a meridian is pi * R / 180 km (111.195 km) at any longitude."""
    assert geo.haversine_km(10.0, -98.0, 11.0, -98.0) == pytest.approx(KM_PER_DEG_LAT, rel=1e-12)
    assert KM_PER_DEG_LAT == pytest.approx(111.195, abs=1e-3)


def test_haversine_km_quarter_and_half_meridian() -> None:
    """Equator to pole is pi * R / 2 and antipodes are pi * R apart (20,015.114 km)."""
    assert geo.haversine_km(0.0, 0.0, 90.0, 0.0) == pytest.approx(math.pi * R / 2, rel=1e-12)
    assert geo.haversine_km(0.0, 0.0, 0.0, 180.0) == pytest.approx(math.pi * R, rel=1e-12)
    assert geo.haversine_km(40.0, -100.0, -40.0, 80.0) == pytest.approx(20015.114, abs=1e-3)


def test_haversine_km_lax_to_jfk_matches_aviation_formulary() -> None:
    """LAX (33d57'N 118d24'W) to JFK (40d38'N 73d47'W) is 0.623585 rad (Williams' example)."""
    d = geo.haversine_km(33.95, -118.4, 40 + 38 / 60, -(73 + 47 / 60))
    assert d / R == pytest.approx(0.623585, abs=1e-6)
    assert d == pytest.approx(3972.9, abs=0.1)


def test_haversine_km_is_symmetric_zero_on_itself_and_wraps_antimeridian() -> None:
    """Distance is symmetric, 0 from a point to itself, and short across 180 degrees."""
    a, b = (29.4241, -98.4936), (32.7767, -96.797)
    assert geo.haversine_km(*a, *b) == geo.haversine_km(*b, *a)
    assert geo.haversine_km(*a, *a) == 0.0
    assert geo.haversine_km(0.0, 179.5, 0.0, -179.5) == pytest.approx(KM_PER_DEG_LAT, rel=1e-12)


# --- Area.contains: polygons -------------------------------------------------------------


def test_area_contains_polygon_interior_exterior_and_edge() -> None:
    """A point inside is in, outside is out, and a point on an edge or a vertex counts as in."""
    area = geo.Area(geo.polygon_from_rings(square(-99.0, 29.0, -98.0, 30.0), "t"))
    assert area.contains(29.5, -98.5)
    assert not area.contains(30.5, -98.5)
    assert not area.contains(29.5, -97.5)
    assert area.contains(29.0, -98.5)  # south edge
    assert area.contains(29.5, -99.0)  # west edge
    assert area.contains(30.0, -98.0)  # vertex


def test_area_contains_polygon_hole_is_outside() -> None:
    """A point in a polygon's hole is outside; the hole's edge counts as inside."""
    rings = square(-99.0, 29.0, -98.0, 30.0) + square(-98.6, 29.4, -98.4, 29.6)
    area = geo.Area(geo.polygon_from_rings(rings, "t"))
    assert not area.contains(29.5, -98.5)
    assert area.contains(29.4, -98.5)
    assert area.contains(29.2, -98.5)


def _local_offset(lat: float, lon: float, east_km: float, north_km: float) -> tuple[float, float]:
    """(lat, lon) displaced by a small east/north offset in km (local metric at ``lat``)."""
    return lat + north_km / KM_PER_DEG_LAT, lon + east_km / (
        KM_PER_DEG_LAT * math.cos(math.radians(lat))
    )


@pytest.mark.parametrize("lat0", [29.4, 45.0, 60.0])
@pytest.mark.parametrize("metres", [100, 200, 300, 500])
def test_area_contains_points_just_outside_polygon_edges_are_outside(
    lat0: float, metres: int
) -> None:
    """Points 100-500 m (true distance) beyond any edge, slanted ones too, are not matched."""
    # a triangle-ish polygon of about 20 km with N, E and slanted SW edges
    lon0 = -100.0
    dlat = 20.0 / KM_PER_DEG_LAT
    dlon = 20.0 / (KM_PER_DEG_LAT * math.cos(math.radians(lat0)))
    ring = [
        [lon0, lat0],
        [lon0 + dlon, lat0 - dlat / 2],
        [lon0 + dlon, lat0 + dlat],
        [lon0, lat0 + dlat],
        [lon0, lat0],
    ]
    area = geo.Area(geo.polygon_from_rings([ring], "t"))
    d_km = metres / 1000.0
    for (lon_a, lat_a), (lon_b, lat_b) in zip(ring, ring[1:], strict=False):
        mid_lat, mid_lon = (lat_a + lat_b) / 2, (lon_a + lon_b) / 2
        # the edge direction and its outward normal in local km (the ring is counter-clockwise)
        kx = KM_PER_DEG_LAT * math.cos(math.radians(mid_lat))
        ex, ey = (lon_b - lon_a) * kx, (lat_b - lat_a) * KM_PER_DEG_LAT
        norm = math.hypot(ex, ey)
        nx, ny = ey / norm, -ex / norm
        out_lat, out_lon = _local_offset(mid_lat, mid_lon, nx * d_km, ny * d_km)
        in_lat, in_lon = _local_offset(mid_lat, mid_lon, -nx * d_km, -ny * d_km)
        # the offset really is ``metres`` on the sphere (to 0.5 %)
        assert geo.haversine_km(mid_lat, mid_lon, out_lat, out_lon) == pytest.approx(d_km, rel=5e-3)
        assert not area.contains(out_lat, out_lon), (metres, lat0, (lon_a, lat_a))
        assert area.contains(in_lat, in_lon), (metres, lat0, (lon_a, lat_a))


# --- Area.contains: circles --------------------------------------------------------------


@pytest.mark.parametrize("lat", [0.0, 29.4241, 45.0, 60.0, 71.0, -33.9])
@pytest.mark.parametrize("radius_km", [1.0, 40.0, 500.0])
def test_area_contains_circle_is_exact_by_haversine_at_its_rim(
    lat: float, radius_km: float
) -> None:
    """A point 20 m inside a circle's rim is matched and 20 m outside is not, at any bearing."""
    lon = -98.4936
    area = geo.Area(None, (Circle(lat=lat, lon=lon, radius_km=radius_km),))
    for bearing in BEARINGS:
        in_lat, in_lon = destination(lat, lon, bearing, radius_km - 0.02)
        out_lat, out_lon = destination(lat, lon, bearing, radius_km + 0.02)
        assert geo.haversine_km(lat, lon, in_lat, in_lon) == pytest.approx(radius_km - 0.02)
        assert area.contains(in_lat, in_lon), bearing
        assert not area.contains(out_lat, out_lon), bearing


def test_area_contains_circle_centre_and_across_antimeridian() -> None:
    """A circle matches its centre and points across 180 degrees within its radius."""
    area = geo.Area(None, (Circle(lat=52.0, lon=179.9, radius_km=50.0),))
    assert area.contains(52.0, 179.9)
    assert area.contains(52.0, -179.9)
    assert not area.contains(52.0, -179.0)


def test_area_contains_union_of_polygon_and_circle() -> None:
    """The area is the union: a point only in the circle and one only in the polygon both match."""
    poly = geo.polygon_from_rings(square(-99.0, 29.0, -98.0, 30.0), "t")
    area = geo.Area(poly, (Circle(lat=32.7767, lon=-96.797, radius_km=30.0),))
    assert area.contains(29.5, -98.5)
    assert area.contains(32.7767, -96.797)
    assert not area.contains(31.0, -97.5)


def test_area_without_polygons_or_circles_is_refused() -> None:
    """An Area needs at least one polygon or circle; an empty polygon counts as none."""
    with pytest.raises(ValueError, match="polygons or circles"):
        geo.Area(None)
    with pytest.raises(ValueError, match="polygons or circles"):
        geo.Area(Polygon())


# --- contains_many ----------------------------------------------------------------------


def test_area_contains_many_agrees_with_contains_on_random_points() -> None:
    """The vectorised matcher gives exactly the scalar answer for every random point."""
    rng = np.random.default_rng(20261122)
    rings = square(-99.0, 29.0, -98.0, 30.0) + square(-98.6, 29.4, -98.4, 29.6)
    circles = (
        Circle(lat=29.0, lon=-97.8, radius_km=25.0),
        Circle(lat=30.3, lon=-99.2, radius_km=8.0),
    )
    area = geo.Area(geo.polygon_from_rings(rings, "t"), circles)
    n = 4000
    lats = rng.uniform(28.5, 30.7, n)
    lons = rng.uniform(-99.6, -97.3, n)
    # add points exactly on the polygon's edges and on the circles' rims
    lats = np.concatenate([lats, [29.0, 30.0, 29.4], [destination(29.0, -97.8, 33.0, 25.0)[0]]])
    lons = np.concatenate([lons, [-98.5, -98.2, -98.5], [destination(29.0, -97.8, 33.0, 25.0)[1]]])
    got = area.contains_many(lats, lons)
    want = np.array([area.contains(float(a), float(o)) for a, o in zip(lats, lons, strict=True)])
    assert got.dtype == np.bool_
    assert got.shape == lats.shape
    assert np.array_equal(got, want)
    assert 0 < int(got.sum()) < len(got)  # the sample has points on both sides


def test_area_contains_many_circles_only_and_empty_input() -> None:
    """contains_many works without polygons and on empty arrays."""
    area = geo.Area(None, (Circle(lat=60.0, lon=10.0, radius_km=1.0),))
    lat_in, lon_in = destination(60.0, 10.0, 77.0, 0.98)
    lat_out, lon_out = destination(60.0, 10.0, 77.0, 1.02)
    got = area.contains_many(np.array([lat_in, lat_out]), np.array([lon_in, lon_out]))
    assert got.tolist() == [True, False]
    assert area.contains_many(np.array([]), np.array([])).shape == (0,)


# --- bbox -------------------------------------------------------------------------------


@pytest.mark.parametrize("lat", [0.0, 29.4, 60.0, 71.0, -45.0])
@pytest.mark.parametrize("radius_km", [1.0, 100.0, 1000.0])
def test_area_bbox_encloses_circle_rim(lat: float, radius_km: float) -> None:
    """An area's bbox holds every rim point of its circles (it prefilters candidates)."""
    area = geo.Area(None, (Circle(lat=lat, lon=-100.0, radius_km=radius_km),))
    min_lon, min_lat, max_lon, max_lat = area.bbox
    for i in range(360):
        p_lat, p_lon = destination(lat, -100.0, float(i), radius_km)
        assert min_lon <= p_lon <= max_lon and min_lat <= p_lat <= max_lat, i


def test_area_bbox_encloses_contained_points_across_antimeridian() -> None:
    """A point a circle contains across 180 degrees lies in the area's bbox."""
    area = geo.Area(None, (Circle(lat=52.0, lon=179.9, radius_km=50.0),))
    assert area.contains(52.0, -179.9)
    min_lon, min_lat, max_lon, max_lat = area.bbox
    assert min_lon <= -179.9 <= max_lon and min_lat <= 52.0 <= max_lat


# --- covers_box, intersects_geometry -----------------------------------------------------


def test_area_covers_box_inside_straddling_and_circles_only() -> None:
    """covers_box is true only for a box wholly inside the polygons; circles never cover."""
    area = geo.Area(
        geo.polygon_from_rings(square(-99.0, 29.0, -98.0, 30.0), "t"),
        (Circle(lat=35.0, lon=-100.0, radius_km=100.0),),
    )
    assert area.covers_box(-98.75, 29.25, -98.5, 29.5)
    assert not area.covers_box(-98.25, 29.25, -97.75, 29.5)  # straddles the east edge
    assert not area.covers_box(-97.0, 29.0, -96.0, 30.0)  # disjoint
    assert not area.covers_box(-100.1, 34.9, -99.9, 35.1)  # inside the circle only
    circles_only = geo.Area(None, (Circle(lat=35.0, lon=-100.0, radius_km=100.0),))
    assert not circles_only.covers_box(-100.1, 34.9, -99.9, 35.1)


@ignore_ops_transform
def test_area_intersects_geometry_circle_near_a_county() -> None:
    """A circle east of Bexar county meets it iff its radius reaches the county's east end."""
    bexar = load().counties["48029"]
    # the easternmost vertex of the county; every county point has lon <= it
    ring_pts = [pt for g in getattr(bexar, "geoms", [bexar]) for pt in g.exterior.coords]
    east_lon, east_lat = max(ring_pts)
    lat_c, lon_c = east_lat, east_lon + 0.1
    gap_km = R * math.asin(math.sin(math.radians(0.1)) * math.cos(math.radians(lat_c)))
    assert gap_km == pytest.approx(9.69, abs=0.05)
    reach = geo.Area(None, (Circle(lat=lat_c, lon=lon_c, radius_km=gap_km + 0.2),))
    short = geo.Area(None, (Circle(lat=lat_c, lon=lon_c, radius_km=gap_km - 0.2),))
    assert reach.intersects_geometry(bexar)
    assert not short.intersects_geometry(bexar)
    poly_area = geo.Area(geo.polygon_from_rings(square(-98.5, 29.3, -98.4, 29.4), "t"))
    assert poly_area.intersects_geometry(bexar)
    assert not geo.Area(
        geo.polygon_from_rings(square(-97.5, 29.3, -97.4, 29.4), "t")
    ).intersects_geometry(bexar)


@ignore_ops_transform
@pytest.mark.parametrize("lat", [29.4, 60.0])
def test_area_intersects_geometry_circle_rim_within_200_m_at_40_km(lat: float) -> None:
    """For a 40 km circle, a point 200 m inside the rim intersects and 200 m outside does not."""
    c = Circle(lat=lat, lon=-150.0, radius_km=40.0)
    area = geo.Area(None, (c,))
    for bearing in BEARINGS:
        in_lat, in_lon = destination(lat, -150.0, bearing, 39.8)
        out_lat, out_lon = destination(lat, -150.0, bearing, 40.2)
        assert area.intersects_geometry(Point(in_lon, in_lat)), bearing
        assert not area.intersects_geometry(Point(out_lon, out_lat)), bearing


@ignore_ops_transform
def test_area_intersects_geometry_circle_exact_at_large_radius() -> None:
    """A geometry 1 km inside a 200 km circle's rim at 60N intersects it, at any bearing."""
    area = geo.Area(None, (Circle(lat=60.0, lon=-150.0, radius_km=200.0),))
    for bearing in BEARINGS:
        p_lat, p_lon = destination(60.0, -150.0, bearing, 199.0)
        assert area.intersects_geometry(Point(p_lon, p_lat)), bearing


def test_area_intersects_geometry_circle_emits_no_deprecation_warning() -> None:
    """Testing a circle against a geometry emits no warning (filterwarnings=error is on)."""
    area = geo.Area(None, (Circle(lat=29.4, lon=-98.5, radius_km=10.0),))
    assert area.intersects_geometry(Point(-98.5, 29.45))


# --- polygon_from_rings ------------------------------------------------------------------


def test_polygon_from_rings_accepts_a_valid_ring_with_hole() -> None:
    """A closed ring with a hole becomes a valid shapely polygon (x = lon, y = lat)."""
    rings = square(-99.0, 29.0, -98.0, 30.0) + square(-98.6, 29.4, -98.4, 29.6)
    poly = geo.polygon_from_rings(rings, "t")
    assert poly.is_valid
    assert poly.bounds == (-99.0, 29.0, -98.0, 30.0)
    assert len(poly.interiors) == 1


def test_polygon_from_rings_refuses_three_positions() -> None:
    """A ring of 3 positions is refused: a ring needs at least 4 (first = last)."""
    with pytest.raises(Invalid, match=r"area\.geometry ring 0: 3 positions") as e:
        geo.polygon_from_rings([[[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]]], "area.geometry")
    assert e.value.code == "invalid_geometry"


def test_polygon_from_rings_refuses_no_rings() -> None:
    """A polygon with no ring is refused."""
    with pytest.raises(Invalid, match="at least one ring"):
        geo.polygon_from_rings([], "t")


def test_polygon_from_rings_refuses_unclosed_ring() -> None:
    """A ring whose last position differs from its first is refused, showing both."""
    ring = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
    with pytest.raises(Invalid, match=r"not closed.*\[0\.0, 0\.0\].*\[0\.0, 1\.0\]") as e:
        geo.polygon_from_rings([ring], "t")
    assert e.value.code == "invalid_geometry"


@pytest.mark.parametrize(
    ("position", "what"),
    [
        ([200.0, 29.0], "longitude 200.0"),
        ([-181.0, 29.0], "longitude -181.0"),
        ([-98.0, 91.0], "latitude 91.0"),
        ([29.4, -98.5], "latitude -98.5"),  # [lat, lon] sent by mistake
    ],
)
def test_polygon_from_rings_refuses_out_of_range_with_lon_lat_hint(
    position: list[float], what: str
) -> None:
    """An out-of-range coordinate is refused, naming it and the GeoJSON [lon, lat] order."""
    ring = [[-98.0, 29.0], position, [-97.0, 30.0], [-98.0, 29.0]]
    with pytest.raises(Invalid) as e:
        geo.polygon_from_rings([ring], "area.geometry")
    assert e.value.code == "coordinate_out_of_range"
    assert "area.geometry ring 0 position 1" in e.value.reason
    assert what in e.value.reason
    assert "[lon, lat]" in e.value.reason


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_polygon_from_rings_refuses_non_finite(bad: float) -> None:
    """NaN or infinite coordinates are refused as not finite."""
    ring = [[-98.0, 29.0], [bad, 29.5], [-97.0, 30.0], [-98.0, 29.0]]
    with pytest.raises(Invalid, match="position 1: not a finite number"):
        geo.polygon_from_rings([ring], "t")


def test_polygon_from_rings_refuses_wrong_position_length() -> None:
    """A position that is not [lon, lat] (or [lon, lat, alt]) is refused."""
    ring = [[-98.0, 29.0], [-97.5], [-97.0, 30.0], [-98.0, 29.0]]
    with pytest.raises(Invalid, match="expected \\[lon, lat\\], got 1 numbers"):
        geo.polygon_from_rings([ring], "t")


def test_polygon_from_rings_refuses_zero_area() -> None:
    """Collinear or repeated positions (no area) are refused."""
    with pytest.raises(Invalid, match="encloses no area"):
        geo.polygon_from_rings([[[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [0.0, 0.0]]], "t")
    with pytest.raises(Invalid, match="fewer than 3 distinct positions"):
        geo.polygon_from_rings([[[0.0, 0.0], [1.0, 1.0], [1.0, 1.0], [0.0, 0.0]]], "t")


# --- repair ------------------------------------------------------------------------------

BOWTIE = [[[0.0, 0.0], [2.0, 2.0], [2.0, 0.0], [0.0, 1.0], [0.0, 0.0]]]


def test_repair_bowtie_returns_valid_geometry_and_reason() -> None:
    """A self-intersecting bowtie is repaired to the area of both lobes and the reason is given."""
    poly = geo.polygon_from_rings(BOWTIE, "t")
    fixed, reason = geo.repair(poly)
    assert reason is not None and "Self-intersection" in reason
    assert fixed.is_valid
    assert fixed.geom_type in ("Polygon", "MultiPolygon")
    assert fixed.area == pytest.approx(5 / 3)  # lobes of 1/3 and 4/3
    assert fixed.covers(Point(0.1, 0.5)) and fixed.covers(Point(1.9, 1.0))


def test_repair_valid_polygon_is_unchanged() -> None:
    """A valid polygon comes back as is, with no reason."""
    poly = box(0.0, 0.0, 1.0, 1.0)
    fixed, reason = geo.repair(poly)
    assert fixed is poly
    assert reason is None


def test_polygon_from_rings_symmetric_bowtie_is_repaired_not_refused() -> None:
    """A symmetric bowtie (lobes of equal area) is accepted and repaired like any other."""
    poly = geo.polygon_from_rings(
        [[[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]], "t"
    )
    fixed, reason = geo.repair(poly)
    assert reason is not None
    assert fixed.area == pytest.approx(0.5)


# --- circle_polygon ----------------------------------------------------------------------


@pytest.mark.parametrize("lat", [0.0, 29.4, 45.0, 60.0])
@pytest.mark.parametrize("radius_km", [1.0, 40.0, 200.0, 1000.0])
def test_circle_polygon_vertices_lie_outside_the_circle(lat: float, radius_km: float) -> None:
    """Every vertex lies outside the circle, but by no more than 1 % of the radius."""
    c = Circle(lat=lat, lon=-100.0, radius_km=radius_km)
    poly = geo.circle_polygon(c)
    assert poly.is_valid
    coords = list(poly.exterior.coords)
    assert len(coords) >= 37
    for lon, lat_v in coords:
        d = geo.haversine_km(lat, -100.0, lat_v, lon)
        assert radius_km / math.cos(math.pi / 72) * (1 - 1e-9) <= d <= radius_km * 1.01


@pytest.mark.parametrize("lat", [0.0, 29.4, 45.0, 60.0, 71.0])
@pytest.mark.parametrize("radius_km", [1.0, 40.0, 200.0, 1000.0])
def test_circle_polygon_encloses_the_circle_to_within_its_last_percent(
    lat: float, radius_km: float
) -> None:
    """Every point at 99 % of the radius, at any bearing, is inside the circle's polygon."""
    poly = geo.circle_polygon(Circle(lat=lat, lon=-100.0, radius_km=radius_km))
    shapely.prepare(poly)
    for i in range(720):
        p_lat, p_lon = destination(lat, -100.0, i / 2, radius_km * 0.99)
        assert poly.contains(Point(p_lon, p_lat)), i / 2


def test_circle_polygon_encloses_the_circle() -> None:
    """Every rim point of the circle, at any bearing, is covered by its polygon (to 1 mm)."""
    for lat in (0.0, 29.4, 45.0, 60.0, 71.0):
        for radius_km in (1.0, 40.0, 200.0, 1000.0):
            poly = geo.circle_polygon(Circle(lat=lat, lon=-100.0, radius_km=radius_km))
            grown = poly.buffer(1e-8)  # numerical tangency at the chord midpoints
            for i in range(3600):
                p_lat, p_lon = destination(lat, -100.0, i / 10, radius_km)
                assert grown.covers(Point(p_lon, p_lat)), (lat, radius_km, i / 10)


# --- to_multipolygon_coords, from_coords ---------------------------------------------------


def test_area_from_coords_round_trips_multipolygon_coords() -> None:
    """Stored MultiPolygon coordinates rebuild an Area that matches the same points."""
    rings = square(-99.0, 29.0, -98.0, 30.0) + square(-98.6, 29.4, -98.4, 29.6)
    geom = shapely.union_all(
        [geo.polygon_from_rings(rings, "a"), geo.polygon_from_rings(square(-97, 29, -96, 30), "b")]
    )
    coords = geo.to_multipolygon_coords(geom)
    assert len(coords) == 2
    area = geo.Area.from_coords(coords, [Circle(lat=35.0, lon=-100.0, radius_km=5.0)])
    assert area.contains(29.2, -98.5) and area.contains(29.5, -96.5)
    assert not area.contains(29.5, -98.5)  # the hole
    assert area.contains(35.0, -100.0)
    assert geo.to_multipolygon_coords(None) == []
