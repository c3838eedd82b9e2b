"""US county and state outlines shipped with the package, and what is built on them.

The data (``amber_relay/data/us-boundaries.bin``: Census 2016 1:500k outlines, plus the
codes created since at 2023 1:10m, widened; provenance, precision and figures in
``docs/geodata.md``) is memory-mapped on first use and shared by every process on the
machine through the page cache. Geometries are built per feature on demand: counties
into a small LRU, states once (jurisdiction checks use them all the time).

SAME codes resolve to their county's outline widened outward by ``widen_m`` metres
(``Settings.same_widen_m``), so that everyone inside the county is reached
(:func:`amber_relay._widen.widen`). Every code of both vintages resolves to its own
area; retired, renamed and coarse codes come with a warning that says what was done.
SAME codes with a non-zero first digit (part of a county) resolve to the whole
county, with a warning: over-alerting a county beats missing part of it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from rtree import index as rtree_index
from shapely.geometry.base import BaseGeometry

from . import _vintage, geo
from ._boundaries import Boundaries
from ._features import LazyGeometries, VertexLRU
from ._jurisdiction import Jurisdictions
from ._widen import widen
from .errors import Forbidden, Invalid
from .model import Circle

__all__ = [
    "DEFAULT_WIDEN_M",
    "GeoData",
    "from_boundaries",
    "load",
]

DEFAULT_WIDEN_M = 100.0
"""Default outward widening of SAME areas (``Settings.same_widen_m``)."""

# Built county outlines kept per process, by total vertices (~5 % of all counties; a
# vertex costs ~40 B in GEOS with its prepared index).
_COUNTY_CACHE_VERTICES = 50_000
# Widened SAME areas kept per process: a whole state widened is up to ~160,000 (Alaska).
_WIDENED_CACHE_VERTICES = 400_000

# Jurisdiction margin when none is given: 12 nautical miles, the territorial sea.
_MARGIN_KM = 22.2


@dataclass(frozen=True)
class GeoData:
    """Counties (5-digit FIPS) and states (2-digit FIPS), as lazy ``{code: geometry}``."""

    counties: LazyGeometries
    county_names: dict[str, str]
    states: LazyGeometries
    state_names: dict[str, str]
    jurisdiction_states: LazyGeometries | None = None
    """States within 100 m (for jurisdiction checks, which allow ~2 km at state lines):
    the 1:500k outlines cost seconds to buffer and merge, these a fraction of that."""
    coarse: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Codes only known at 1:10m: ``{"widen_m": ..., "clip": code}`` each."""
    _widened: VertexLRU[tuple[str, float]] = field(
        default_factory=lambda: VertexLRU(_WIDENED_CACHE_VERTICES), repr=False
    )

    def county(self, fips5: str) -> BaseGeometry | None:
        """A county's outline (unwidened), following renames; ``None`` if unknown."""
        code = _vintage.RENAMED.get(fips5, (fips5, ""))[0]
        if len(code) == 2:
            return self.states.get(code)
        return self.counties.get(code)

    def region_code(self, region: str) -> str | None:
        """The county FIPS code a client's ``region`` tag stands for, ``None`` if not one.

        Exactly 5 digits naming a shipped county (any vintage); a renamed county's old
        code gives its new one. Builds no geometry: cheap enough for every hello.
        """
        if len(region) != 5 or not region.isascii() or not region.isdigit():
            return None
        code = _vintage.RENAMED.get(region, (region, ""))[0]
        return code if code in self.counties else None

    def _area(self, code: str, widen_m: float) -> BaseGeometry:
        geoms = self.states if len(code) == 2 else self.counties
        return self._widened.get((code, widen_m), lambda: widen(geoms[code], widen_m))

    def resolve_same(
        self, codes: Sequence[str], widen_m: float = DEFAULT_WIDEN_M
    ) -> tuple[list[BaseGeometry], list[str]]:
        """Areas for SAME codes (PSSCCC), each widened by ``widen_m`` metres, and warnings.

        A county takes milliseconds (cached after); a whole state up to ~1 s for
        Alaska, once per process and width. Not cancellable: call it off the event loop.

        Raises:
            Invalid: a code names no known state or county; the message names it.
        """
        geoms: list[BaseGeometry] = []
        warnings: list[str] = []
        unknown: list[str] = []
        for code in codes:
            part, state, county = code[0], code[1:3], code[3:6]
            if county == "000":
                if state in self.states:
                    geoms.append(self._area(state, widen_m))
                else:
                    unknown.append(code)
                continue
            fips = state + county
            if part != "0":
                warnings.append(
                    f"SAME {code}: part {part} of county {fips}; alerting the whole county"
                )
            if fips in _vintage.RENAMED:
                warnings.append(_vintage.renamed_warning(code, fips))
                fips = _vintage.RENAMED[fips][0]
            if fips not in self.counties:
                unknown.append(code)
                continue
            name = self.county_names[fips]
            if fips in _vintage.RETIRED:
                warnings.append(_vintage.retired_warning(code, fips, name))
            if fips in self.coarse:
                clip = self.coarse[fips]["clip"]
                within = self.state_names.get(clip) or f"former {self.county_names[clip]}"
                warnings.append(
                    _vintage.coarse_warning(
                        code, fips, name, self.coarse[fips]["widen_m"], f"{within} ({clip})"
                    )
                )
            geoms.append(self._area(fips, widen_m))
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
            idx.insert(i, self.states.bounds(sid))
        return idx, ids

    @functools.cached_property
    def _county_index(self) -> tuple[rtree_index.Index, list[str]]:
        # From the file's bounding boxes: no county geometry is built.
        ids = sorted(self.counties)
        idx = rtree_index.Index()
        for i, cid in enumerate(ids):
            idx.insert(i, self.counties.bounds(cid))
        return idx, ids

    def counties_intersecting(self, bbox: tuple[float, float, float, float]) -> list[str]:
        """FIPS codes of counties whose bounding box meets ``bbox`` (candidates only)."""
        idx, ids = self._county_index
        return [ids[i] for i in idx.intersection(bbox)]

    def counties_touching(
        self, polygons: BaseGeometry | None, circles: Sequence[Circle]
    ) -> list[str]:
        """Sorted FIPS codes of the counties an area (polygons and circles) touches.

        What county-tagged clients are matched by, computed once per alert version at
        ingest (never on a broadcaster's loop). Circles are exact to metres: counties
        whose box lies inside a polygon inside the circle are in without their outline
        being built, counties meeting that inner polygon are in, those missing a polygon
        around the circle are out, and only the few between get the exact distance test.
        Each candidate's 1:500k outline is built at most once per call (the shared LRU
        is bounded by vertices, and 100 large circles would make it thrash).
        """
        idx, ids = self._county_index
        built: dict[int, BaseGeometry] = {}

        def outlines(cand: npt.NDArray[np.int64]) -> npt.NDArray[np.object_]:
            out = np.empty(cand.size, dtype=object)
            for k, i in enumerate(cand.tolist()):
                g = built.get(i)
                if g is None:
                    g = built[i] = self.counties[ids[i]]
                out[k] = g
            return out

        found: set[int] = set()
        if polygons is not None and not polygons.is_empty:
            shapely.prepare(polygons)
            cand = np.fromiter(idx.intersection(polygons.bounds), dtype=np.int64)
            if cand.size:
                found.update(cand[shapely.intersects(polygons, outlines(cand))].tolist())
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
                boxes = shapely.box(*np.array([self.counties.bounds(ids[i]) for i in cand]).T)
                whole = shapely.contains(inner, boxes)
                found.update(cand[whole].tolist())
                cand = cand[~whole]
                if not cand.size:
                    continue
                cand = cand[shapely.intersects(outer, outlines(cand))]
                sure = shapely.intersects(inner, outlines(cand))
                found.update(cand[sure].tolist())
                cand = cand[~sure]
            for i in cand.tolist():
                if geo.circle_distance_km(c, outlines(np.array([i]))[0]) <= c.radius_km:
                    found.add(i)
        return sorted(ids[i] for i in found)

    def same_regions(self, codes: Sequence[str]) -> set[str]:
        """County FIPS codes whose county-tagged clients a SAME-coded area is for.

        A county code is its own county (renamed codes their new one), a whole-state
        code every county of the state. The widened outline is NOT used: it reaches
        ~100 m into every neighbour, and a county-tagged client there is no nearer
        than that county's centre. Codes whose area another vintage divides differently
        (Connecticut's counties and planning regions, 02261 and 02063/02066) also name
        the other vintage's codes they overlap by more than a ~2 km strip, so a client
        tagged with either code gets the alert. Unknown codes are skipped (``resolve_same``
        refuses them first).
        """
        found: set[str] = set()
        for code in codes:
            state, county = code[1:3], code[3:6]
            if county == "000":
                found.update(c for c in self.counties if c.startswith(state))
                continue
            fips = _vintage.RENAMED.get(state + county, (state + county, ""))[0]
            if fips not in self.counties:
                continue
            found.add(fips)
            if fips in _vintage.RETIRED or fips in self.coarse:
                core = self.counties[fips].buffer(-0.02)
                if not core.is_empty:
                    found.update(self.counties_touching(core, ()))
        return found

    def states_touching(self, geom: BaseGeometry) -> list[str]:
        """State FIPS codes whose polygon meets ``geom``."""
        if geom.is_empty:  # its bounds are NaN, which the R-tree refuses
            return []
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
                margin_km,
                Jurisdictions(self.jurisdiction_states or self.states, self.state_names, margin_km),
            )
        checker.check(parts, list(jurisdiction), self.states_touching)


def from_boundaries(data: Boundaries) -> GeoData:
    """A :class:`GeoData` over an opened boundaries file.

    Ids of 5 digits are counties, of 2 digits states, ``SSj`` a state's coarse outline.
    """
    counties = {fid: i for i, fid in enumerate(data.ids) if len(fid) == 5}
    states = {fid: i for i, fid in enumerate(data.ids) if len(fid) == 2}
    coarse_states = {fid[:2]: i for i, fid in enumerate(data.ids) if fid[2:] == "j"}
    names = dict(zip(data.ids, data.names, strict=True))
    return GeoData(
        counties=LazyGeometries(data, counties, VertexLRU(_COUNTY_CACHE_VERTICES)),
        county_names={c: names[c] for c in counties},
        states=LazyGeometries(data, states, None),
        jurisdiction_states=LazyGeometries(data, coarse_states, None) if coarse_states else None,
        state_names={s: names[s] for s in states},
        coarse=dict(data.header.get("coarse", {})),
    )


@functools.cache
def load() -> GeoData:
    """The shipped geodata, mapped on first call (a few milliseconds) and cached."""
    ref = resources.files("amber_relay").joinpath("data", "us-boundaries.bin")
    with resources.as_file(ref) as path:
        # The mapping outlives a temporary extraction (zip installs) on POSIX.
        return from_boundaries(Boundaries(path))
