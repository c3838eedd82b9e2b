"""US county and state polygons shipped with the package, and what is built on them.

The data (``amber_relay/data``, Census 2017 1:10m via us-atlas 3.0.1; provenance and
defects in ``docs/geodata.md``) is read once, lazily, and cached for the process.
SAME codes resolve to county polygons; agencies' jurisdictions are checked against
state polygons.

Defects handled here:

- Falls Church, VA (51610) has no geometry at 1:10m: it resolves to Fairfax (51059),
  which surrounds it.
- Codes newer than the 2017 vintage (Connecticut planning regions 09110-09190, Alaska
  02063/02066) resolve to a covering older area with a warning, never dropped.
- SAME codes with a non-zero first digit (part of a county) resolve to the whole
  county, with a warning: over-alerting a county beats missing part of it.
"""

from __future__ import annotations

import functools
import gzip
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np
import numpy.typing as npt
import shapely
from rtree import index as rtree_index
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from . import geo
from ._jurisdiction import Jurisdictions
from .errors import Forbidden, Invalid
from .model import Circle

__all__ = [
    "GeoData",
    "load",
]

# Codes of the 2017 vintage's successors: new code -> code present in the data.
_SUCCESSORS = {
    "02063": "02261",  # Chugach Census Area, split from Valdez-Cordova in 2019
    "02066": "02261",  # Copper River Census Area, same split
    **{f"09{c}": "09" for c in ("110", "120", "130", "140", "150", "160", "170", "180", "190")},
    "46113": "46102",  # Shannon County renamed Oglala Lakota (2015)
    "02270": "02158",  # Wade Hampton renamed Kusilvak (2015)
}
_NULL_GEOMETRY_FALLBACK = {"51610": "51059"}  # Falls Church lies inside Fairfax

# Jurisdiction margin when none is given: 12 nautical miles, the territorial sea.
_MARGIN_KM = 22.2


@dataclass(frozen=True)
class GeoData:
    """Counties (5-digit FIPS) and states (2-digit FIPS) as shapely geometries."""

    counties: dict[str, BaseGeometry]
    county_names: dict[str, str]
    states: dict[str, BaseGeometry]
    state_names: dict[str, str]

    def county(self, fips5: str) -> BaseGeometry | None:
        """A county's polygon, following renames and the null-geometry fallback."""
        code = _NULL_GEOMETRY_FALLBACK.get(fips5, fips5)
        code = _SUCCESSORS.get(code, code)
        if len(code) == 2:
            return self.states.get(code)
        return self.counties.get(code)

    def resolve_same(self, codes: Sequence[str]) -> tuple[list[BaseGeometry], list[str]]:
        """Polygons for SAME codes (PSSCCC) and warnings about approximations.

        Raises:
            Invalid: a code names no known state or county; the message names it.
        """
        geoms: list[BaseGeometry] = []
        warnings: list[str] = []
        unknown: list[str] = []
        for code in codes:
            part, state, county = code[0], code[1:3], code[3:6]
            if county == "000":
                g = self.states.get(state)
                if g is None:
                    unknown.append(code)
                else:
                    geoms.append(g)
                continue
            fips = state + county
            if part != "0":
                warnings.append(
                    f"SAME {code}: part {part} of county {fips}; alerting the whole county"
                )
            if fips in _SUCCESSORS and fips not in self.counties:
                target = _SUCCESSORS[fips]
                name = self.state_names.get(target) or self.county_names.get(target, target)
                warnings.append(
                    f"SAME {code}: county {fips} is newer than the shipped 2017 boundaries;"
                    f" alerting {name} ({target}), which covers it"
                )
            g = self.county(fips)
            if g is None:
                unknown.append(code)
            else:
                geoms.append(g)
        if unknown:
            raise Invalid(
                f"unknown SAME code(s) {', '.join(unknown)}: no such state or county"
                " (format PSSCCC: 0 + 2-digit state FIPS + 3-digit county FIPS)",
                code="unknown_same_code",
            )
        return geoms, warnings

    @functools.cached_property
    def _state_index(self) -> tuple[rtree_index.Index, list[str]]:
        ids = sorted(self.states)
        idx = rtree_index.Index()
        for i, sid in enumerate(ids):
            idx.insert(i, self.states[sid].bounds)
        return idx, ids

    @functools.cached_property
    def _county_index(self) -> tuple[rtree_index.Index, list[str]]:
        ids = sorted(self.counties)
        idx = rtree_index.Index()
        for i, cid in enumerate(ids):
            idx.insert(i, self.counties[cid].bounds)
        return idx, ids

    def counties_intersecting(self, bbox: tuple[float, float, float, float]) -> list[str]:
        """FIPS codes of counties whose bounding box meets ``bbox`` (candidates only)."""
        idx, ids = self._county_index
        return [ids[i] for i in idx.intersection(bbox)]

    @functools.cached_property
    def _county_array(self) -> npt.NDArray[np.object_]:
        _, ids = self._county_index
        return np.array([self.counties[c] for c in ids], dtype=object)

    def counties_touching(
        self, polygons: BaseGeometry | None, circles: Sequence[Circle]
    ) -> list[str]:
        """Sorted FIPS codes of the counties an area (polygons and circles) touches.

        What county-tagged clients are matched by, computed once per alert version at
        ingest (never on a broadcaster's loop). Circles are exact to metres: counties
        meeting a polygon inside the circle are in, those missing a polygon around it
        are out, and only the few between get the exact distance test. Cost: R-tree
        candidates by bounding box, then one vectorised prepared test per part.
        """
        idx, ids = self._county_index
        every = self._county_array
        found: set[int] = set()
        if polygons is not None and not polygons.is_empty:
            shapely.prepare(polygons)
            cand = np.fromiter(idx.intersection(polygons.bounds), dtype=np.int64)
            if cand.size:
                found.update(cand[shapely.intersects(polygons, every[cand])].tolist())
        for c in circles:
            box = geo.circle_bbox(c)
            cand = np.fromiter(idx.intersection(box), dtype=np.int64)
            cand = cand[~np.isin(cand, np.fromiter(found, dtype=np.int64))]
            if not cand.size:
                continue
            if box[0] > -180.0 or box[2] < 180.0:  # not wrapping 180 deg: lon/lat polygons hold
                outer, inner = geo.circle_polygon(c), geo.circle_polygon(c, inside=True)
                shapely.prepare(outer)
                shapely.prepare(inner)
                cand = cand[shapely.intersects(outer, every[cand])]
                sure = shapely.intersects(inner, every[cand])
                found.update(cand[sure].tolist())
                cand = cand[~sure]
            for i in cand.tolist():
                if geo.circle_distance_km(c, every[i]) <= c.radius_km:
                    found.add(i)
        return sorted(ids[i] for i in found)

    def states_touching(self, geom: BaseGeometry) -> list[str]:
        """State FIPS codes whose polygon meets ``geom``."""
        idx, ids = self._state_index
        return sorted(
            ids[i] for i in idx.intersection(geom.bounds) if self.states[ids[i]].intersects(geom)
        )

    @functools.cached_property
    def _jurisdictions(self) -> dict[float, Jurisdictions]:
        return {}

    def check_jurisdiction(
        self,
        parts: Iterable[tuple[str, BaseGeometry]],
        same_codes: Sequence[str],
        jurisdiction: Sequence[str],
        margin_km: float = _MARGIN_KM,
    ) -> None:
        """Refuse an area reaching outside the agency's states (see ``_jurisdiction``).

        ``parts`` are (label, geometry) pairs such as ("area.geometry polygon 1", ...);
        circles are passed as polygons enclosing them. ``["US"]`` means the states, DC
        and the territories. Either way the area may reach ``margin_km`` past the
        outline (coasts, foreign borders) and ~2 km into a neighbouring state.

        Raises:
            Forbidden: naming the first offending part and the states it reaches into,
                or a point of it beyond the margin.
        """
        allowed = set(jurisdiction)
        if "US" not in allowed:
            for code in same_codes:
                if code[1:3] not in allowed:
                    name = self.state_names.get(code[1:3], code[1:3])
                    raise Forbidden(
                        f"SAME {code} is in {name} ({code[1:3]}), outside this agency's"
                        f" jurisdiction {sorted(allowed)}"
                    )
        cache = self._jurisdictions
        checker = cache.get(margin_km)
        if checker is None:
            checker = cache.setdefault(
                margin_km, Jurisdictions(self.states, self.state_names, margin_km)
            )
        checker.check(parts, list(jurisdiction), self.states_touching)


def _read(name: str) -> tuple[dict[str, BaseGeometry], dict[str, str]]:
    raw = resources.files("amber_relay").joinpath("data", name).read_bytes()
    features = json.loads(gzip.decompress(raw))["features"]
    geoms: dict[str, BaseGeometry] = {}
    names: dict[str, str] = {}
    for f in features:
        names[f["id"]] = f["properties"]["name"]
        if f["geometry"] is None:  # Falls Church: collapsed at 1:10m
            continue
        g = shape(f["geometry"])
        shapely.prepare(g)
        geoms[f["id"]] = g
    return geoms, names


@functools.cache
def load() -> GeoData:
    """The shipped geodata, read on first call (about a second) and cached."""
    counties, county_names = _read("us-counties.geojson.gz")
    states, state_names = _read("us-states.geojson.gz")
    return GeoData(counties, county_names, states, state_names)
