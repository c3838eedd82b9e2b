"""Every county's SAME area against its Census 1:500k outline: the WEA-style promise.

The source outlines are read from the pinned plotly-geo 1.0.0 wheel (a test extra),
checked by sha256. For ALL 3,233 counties of that file, the area ``resolve_same``
gives (widened by the default ``same_widen_m``) must cover the 1:500k outline entirely
and reach no farther than 161 m (0.1 mile) past it.
"""

from __future__ import annotations

import hashlib
import math
from importlib import resources

import numpy as np
import pytest
import shapely
from shapely.geometry.base import BaseGeometry

from amber_relay import geodata
from amber_relay.geodata import DEFAULT_WIDEN_M, GeoData
from tools.build_geodata import SHAPEFILES, read_500k

WEA_OVERSHOOT_M = 161.0  # 0.1 mile
_M_PER_DEG = 111_195.0  # sphere of the mean Earth radius; ellipsoid within 0.5 %
_BAND_DEG = 0.5  # latitude bands where a local plane is accurate to ~1 % (at 70 N)

pytestmark = pytest.mark.timeout(300)


def _source(name: str) -> bytes:
    data = resources.files("_plotly_geo").joinpath("package_data", name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == SHAPEFILES[name], name
    return data


@pytest.fixture(scope="module")
def outlines() -> dict[str, BaseGeometry]:
    rows = read_500k(_source("cb_2016_us_county_500k.shp"), _source("cb_2016_us_county_500k.dbf"))
    return {fips: geom for fips, (_, geom) in rows.items()}


@pytest.fixture(scope="module")
def areas(outlines: dict[str, BaseGeometry]) -> dict[str, BaseGeometry]:
    gd = geodata.load()
    return {fips: gd.resolve_same(["0" + fips])[0][0] for fips in outlines}


def _unwrap(geom: BaseGeometry, wrap: bool) -> BaseGeometry:
    """Longitudes west of 0 moved by +360 when a feature straddles 180 degrees."""
    if not wrap:
        return geom
    return shapely.transform(geom, lambda xy: np.where(xy < 0, xy + [360.0, 0.0], xy))


def _overshoot_area_m2(outline: BaseGeometry, area: BaseGeometry, limit_m: float) -> float:
    """Area (m2) of ``area`` farther than ``limit_m`` from ``outline``.

    Measured band by band (0.5 deg of latitude) in an equirectangular plane at the
    band's middle latitude: the part of ``area`` in the band against the outline near
    the band (the band plus 0.02 deg, > limit_m, on each side).
    """
    wrap = outline.bounds[2] - outline.bounds[0] > 180.0
    outline, area = _unwrap(outline, wrap), _unwrap(area, wrap)
    minx, miny, maxx, maxy = area.bounds
    total = 0.0
    lo = miny
    while lo < maxy:
        hi = min(maxy, lo + _BAND_DEG)
        mid = math.radians((lo + hi) / 2)
        k = np.array([math.cos(mid) * _M_PER_DEG, _M_PER_DEG])
        part = shapely.intersection(area, shapely.box(minx - 1, lo, maxx + 1, hi))
        near = shapely.intersection(outline, shapely.box(minx - 1, lo - 0.02, maxx + 1, hi + 0.02))
        if not part.is_empty:
            flat_part = shapely.transform(part, lambda xy, k=k: xy * k)
            flat_near = shapely.transform(near, lambda xy, k=k: xy * k)
            reach = shapely.buffer(flat_near, limit_m, quad_segs=8)
            total += shapely.difference(flat_part, reach).area
        lo = hi
    return total


def test_coverage_every_county_area_covers_all_of_its_500k_outline(
    outlines: dict[str, BaseGeometry], areas: dict[str, BaseGeometry]
) -> None:
    """Each of the 3,233 counties' SAME areas covers 100 % of its 1:500k outline."""
    assert len(outlines) == 3233
    missed = [fips for fips, o in outlines.items() if not areas[fips].covers(o)]
    assert missed == []


def test_coverage_every_county_area_overshoots_its_outline_by_at_most_161_m(
    outlines: dict[str, BaseGeometry], areas: dict[str, BaseGeometry]
) -> None:
    """No point of any county's SAME area is more than 161 m (0.1 mile) outside its outline."""
    # The buffer's chords lie inside the true 161 m circle: the test is slightly strict.
    over = {
        fips: a
        for fips, o in outlines.items()
        if (a := _overshoot_area_m2(o, areas[fips], WEA_OVERSHOOT_M)) > 0.0
    }
    assert over == {}


def test_coverage_default_widening_is_the_documented_100_m() -> None:
    """The promise above is for the default same_widen_m of 100 m."""
    assert DEFAULT_WIDEN_M == 100.0


def test_coverage_coarse_regions_cover_what_they_divide(
    outlines: dict[str, BaseGeometry],
) -> None:
    """The 9 planning regions cover old Connecticut; Chugach and Copper River, Valdez-Cordova."""
    gd: GeoData = geodata.load()
    regions, _ = gd.resolve_same([f"009{c}0" for c in range(11, 20)])
    old = [outlines[f"090{c:02d}"] for c in range(1, 16, 2)]
    assert shapely.union_all(regions).covers(shapely.union_all(old))
    split, _ = gd.resolve_same(["002063", "002066"])
    assert shapely.union_all(split).covers(outlines["02261"])
