"""Tests of the bounded polygon checks (amber_relay._bounded) and per-alert area facts."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

import pytest
import shapely
from shapely.geometry import Polygon

from amber_relay import geo
from amber_relay._bounded import Limits, check_parts
from amber_relay.errors import Invalid
from amber_relay.geodata import GeoData, load
from amber_relay.model import Circle
from amber_relay.settings import Settings
from tests.support import ROOT

LIMITS = Limits(
    max_edge_pairs=Settings().max_edge_pairs,
    max_line_crossings=Settings().max_line_crossings,
    max_crossings=Settings().max_repair_crossings,
)


def star(n: int, lat: float = 31.0, lon: float = -99.5, r: float = 1.0) -> list[list[float]]:
    """An n-pointed star {n/k}, k ~ n/2: every edge crosses most others."""
    k = n // 2 - 1 if n % 2 == 0 else n // 2
    pts = [
        [lon + r * math.cos(2 * math.pi * i * k / n), lat + r * math.sin(2 * math.pi * i * k / n)]
        for i in range(n)
    ]
    return [*pts, pts[0]]


def sun(n: int, lat: float = 31.0, lon: float = -99.5) -> list[list[float]]:
    """A valid ring of n/2 thin spikes around one point."""
    pts = []
    for i in range(n):
        a, r = 2 * math.pi * i / n, (1.0 if i % 2 else 0.001)
        pts.append([lon + r * math.cos(a), lat + r * math.sin(a)])
    return [*pts, pts[0]]


@pytest.fixture(scope="module")
def gd() -> GeoData:
    return load()


def test_star_of_3000_vertices_is_refused_naming_ring_and_first_crossing() -> None:
    """The issue's 3,000-point star is refused with the ring, edges and place of a crossing."""
    poly = geo.polygon_from_rings([star(3000)], "area.geometry")
    with pytest.raises(Invalid) as info:
        check_parts([("area.geometry", poly)], LIMITS)
    assert info.value.code == "self_intersection"
    assert "area.geometry ring 0 edge 0 crosses area.geometry ring 0 edge" in info.value.reason
    assert " at [-9" in info.value.reason


@pytest.mark.timeout(120)
def test_star_ingest_finishes_within_cpu_and_memory_limits() -> None:
    """Validating the 3,000-point star in a child held to 5 CPU-s and 2 GiB ends with a 422.

    The old code (make_valid, quadratic, twice) needs minutes and gigabytes: the child
    is killed by the CPU limit or fails to allocate, and this test fails.
    """
    script = textwrap.dedent(
        """
        import json, resource, time
        from datetime import UTC, datetime, timedelta
        from amber_relay import geodata, ingest
        from amber_relay.agencies import Agency
        from amber_relay.errors import Rejected
        from amber_relay.settings import Settings
        from tests.amber_relay.test_bounded import star
        expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat(timespec="seconds")
        doc = {"identifier": "STAR", "status": "actual", "headline": "h", "expires": expires,
               "area": {"geometry": {"type": "Polygon", "coordinates": [star(3000)]}}}
        gd = geodata.load()
        gd.counties_touching(None, [])
        agency = Agency(id="a", secret="x" * 32, jurisdiction=("48",))
        # From here: 5 more CPU-seconds and 1 GiB more address space, or the child dies.
        used = resource.getrusage(resource.RUSAGE_SELF)
        cpu = int(used.ru_utime + used.ru_stime) + 5
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        vm = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (vm + (1 << 30), vm + (1 << 30)))
        try:
            ingest.validate(ingest.parse_json(json.dumps(doc).encode()), agency, gd,
                            Settings(), now=time.time())
            print("accepted")
        except Rejected as exc:
            print(exc.status, exc.code)
        """
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    res = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=str(ROOT),
        env=env,
        timeout=110,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split() == ["422", "self_intersection"]


def test_bowtie_within_bounds_is_repaired_with_reason() -> None:
    """A bowtie (one crossing) is repaired to both lobes and the GEOS reason returned."""
    ring = [[0.0, 0.0], [2.0, 2.0], [2.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
    [(label, fixed, reason)] = check_parts([("g", geo.polygon_from_rings([ring], "g"))], LIMITS)
    assert label == "g" and reason is not None and "Self-intersection" in reason
    assert fixed.is_valid and fixed.area == pytest.approx(5 / 3)


def test_repairable_star_is_repaired_and_keeps_its_centre() -> None:
    """A 141-point star (~9,700 crossings, under the limit) is repaired, centre inside."""
    poly = geo.polygon_from_rings([star(141)], "g")
    [(_, fixed, reason)] = check_parts([("g", poly)], LIMITS)
    assert reason is not None and fixed.is_valid
    assert fixed.covers(shapely.Point(-99.5, 31.0))


def test_crossings_over_the_limit_are_refused() -> None:
    """The crossing limit is a setting: a bowtie pair is refused when the limit is 0."""
    ring = [[0.0, 0.0], [2.0, 2.0], [2.0, 0.0], [0.0, 2.0], [0.0, 0.0]]
    with pytest.raises(Invalid, match=r"g ring 0 edge 0 crosses g ring 0 edge 2 at \[1\.0"):
        check_parts(
            [("g", geo.polygon_from_rings([ring], "g"))],
            Limits(max_edge_pairs=1000, max_line_crossings=1000, max_crossings=0),
        )


def test_sun_of_thin_spikes_is_refused_as_too_intricate() -> None:
    """A valid 20,000-point sun (its edges' boxes all overlap) is refused before GEOS sees it."""
    poly = geo.polygon_from_rings([sun(20_000)], "area.geometry")
    with pytest.raises(Invalid) as info:
        check_parts([("area.geometry", poly)], LIMITS)
    assert info.value.code == "too_intricate"


def test_sun_of_2000_points_is_accepted_as_is() -> None:
    """A 2,000-point sun is within the edge-pair limit and valid: accepted unchanged."""
    poly = geo.polygon_from_rings([sun(2000)], "g")
    [(_, fixed, reason)] = check_parts([("g", poly)], LIMITS)
    assert reason is None and fixed is poly


def test_parts_stacked_on_each_other_are_refused_as_too_intricate() -> None:
    """100 identical polygons (every edge overlaps 99 others) pass the edge-pair limit."""
    ring = [[-99.0, 31.0], [-98.0, 31.0], [-98.0, 32.0], [-99.0, 32.0], [-99.0, 31.0]]
    dense = [list(p) for p in shapely.segmentize(Polygon(ring), 0.01).exterior.coords]
    parts = [(f"p{i}", geo.polygon_from_rings([dense], f"p{i}")) for i in range(100)]
    with pytest.raises(Invalid) as info:
        check_parts(parts, LIMITS)
    assert info.value.code == "too_intricate"


def test_parts_crossing_each_other_too_often_are_refused_naming_both() -> None:
    """Parts whose edges cross each other count too: the message names both parts."""
    zig = [[-99.0 + i * 0.01, 31.0 + (i % 2) * 0.02] for i in range(101)]
    zag = [[x, 31.01 - (y - 31.0) / 2] for x, y in zig]  # opposite phase: crosses zig
    a = [*zig, [-98.0, 30.0], [-99.0, 30.0], zig[0]]
    b = [*zag, [-98.0, 32.0], [-99.0, 32.0], zag[0]]
    parts = [("a", geo.polygon_from_rings([a], "a")), ("b", geo.polygon_from_rings([b], "b"))]
    with pytest.raises(Invalid, match=r"a ring 0 edge \d+ crosses b ring 0 edge \d+ at"):
        check_parts(parts, Limits(max_edge_pairs=10_000, max_line_crossings=1000, max_crossings=10))
    assert len(check_parts(parts, LIMITS)) == 2


def test_adjacent_parts_sharing_a_long_border_are_accepted() -> None:
    """Two parts drawn side by side share 12,000 border edges: touching is not crossing."""
    border = [[-99.0 + i * 0.0001, 31.0 + 0.1 * (i / 12_000) ** 2] for i in range(12_001)]
    south = [*border, [-97.8, 30.0], [-99.0, 30.0], border[0]]
    north = [*border, [-97.8, 32.0], [-99.0, 32.0], border[0]]
    parts = [(n, geo.polygon_from_rings([r], n)) for n, r in (("s", south), ("n", north))]
    out = check_parts(parts, LIMITS)
    assert [reason for _, _, reason in out] == [None, None]


def test_hole_outside_shell_is_repaired() -> None:
    """An invalid polygon without crossings (hole outside the shell) is repaired.

    make_valid's structure method keeps every area a ring encloses: both triangles.
    """
    shell = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]
    hole = [[2.0, 2.0], [3.0, 2.0], [2.0, 3.0], [2.0, 2.0]]
    [(_, fixed, reason)] = check_parts([("g", geo.polygon_from_rings([shell, hole], "g"))], LIMITS)
    assert reason is not None and fixed.is_valid and fixed.area == pytest.approx(1.5)


def test_distinct_circles_drops_repeats_and_circles_inside_others() -> None:
    """Repeats and circles inside a larger one go; the first of equals and the larger stay."""
    a = Circle(lat=30.0, lon=-100.0, radius_km=1.0)
    big = Circle(lat=30.0, lon=-100.0, radius_km=5.0)
    far = Circle(lat=40.0, lon=-100.0, radius_km=1.0)
    assert geo.distinct_circles([a, a, big, far, far]) == [big, far]
    assert geo.distinct_circles([far]) == [far]


def test_area_from_coords_matches_the_polygons() -> None:
    """The vectorised rebuild gives the same polygons (holes included) as the coordinates."""
    shell = [[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0], [0.0, 0.0]]
    hole = [[1.0, 1.0], [2.0, 1.0], [1.0, 2.0], [1.0, 1.0]]
    other = [[10.0, 10.0], [11.0, 10.0], [11.0, 11.0], [10.0, 10.0]]
    area = geo.Area.from_coords([[shell, hole], [other]], [])
    expected = shapely.MultiPolygon([Polygon(shell, [hole]), Polygon(other)])
    assert area.polygons is not None and area.polygons.equals(expected)
    assert area.bbox == (0.0, 0.0, 11.0, 11.0)


@pytest.mark.parametrize(
    "circle",
    [
        Circle(lat=29.42, lon=-98.49, radius_km=40.0),
        Circle(lat=29.42, lon=-98.49, radius_km=0.1),
        Circle(lat=35.0, lon=-98.0, radius_km=300.0),
        Circle(lat=47.9, lon=-124.3, radius_km=0.1),
        Circle(lat=61.2, lon=-149.9, radius_km=150.0),
    ],
)
def test_counties_touching_a_circle_are_those_the_exact_test_finds(
    gd: GeoData, circle: Circle
) -> None:
    """The fast lookup (inner/outer polygons, then exact) equals the exact test per county."""
    area = geo.Area(None, (circle,))
    exact = sorted(
        fips
        for fips in gd.counties_intersecting(geo.circle_bbox(circle))
        if area.intersects_geometry(gd.counties[fips])
    )
    assert gd.counties_touching(None, [circle]) == exact
    assert exact


def test_counties_touching_a_polygon_include_neighbours_it_reaches(gd: GeoData) -> None:
    """A square across the Bexar/Comal line touches both counties and is sorted."""
    poly = shapely.box(-98.35, 29.6, -98.25, 29.8)
    regions = gd.counties_touching(poly, [])
    assert "48029" in regions and "48091" in regions
    assert regions == sorted(regions)


def test_comb_crossed_by_too_many_edges_on_one_line_is_refused() -> None:
    """A 20,000-vertex comb (valid) would cost every broadcaster 10,000 segment tests per
    point: refused, naming the latitude; a 400-tooth comb is accepted."""

    def comb(teeth: int) -> list[list[float]]:
        w = 2.0 / teeth
        pts = [[-98.0, 30.9], [-100.0, 30.9]]
        for i in range(teeth):
            x = -100.0 + i * w
            pts += [[x, 31.0], [x, 32.0], [x + w / 2, 32.0], [x + w / 2, 31.0]]
        return [*pts, pts[0]]

    with pytest.raises(Invalid, match=r"line of latitude 3[12]\.\d+ crosses 9\d{3} of its"):
        check_parts([("g", geo.polygon_from_rings([comb(4999)], "g"))], LIMITS)
    [(_, _, reason)] = check_parts([("g", geo.polygon_from_rings([comb(400)], "g"))], LIMITS)
    assert reason is None
