"""Jurisdiction as geography: an agency's states (or the whole US) plus a margin.

Two outlines per jurisdiction, built once per process and cached:

- the **border** outline, the states buffered by ``BORDER_TOLERANCE_DEG`` (~2 km, the
  error of the 1:10m boundaries): an area reaching further into another US state is
  refused, naming that state;
- the **margin** outline, the states buffered by ``margin_km`` (default 12 nautical
  miles, the territorial sea): an area reaching past it (the open sea, Canada, Mexico)
  is refused, naming a point out there.

The margin buffer is computed in degrees with the longitude scaled by the cosine of the
highest latitude of each polygon part, so it is at least ``margin_km`` wide everywhere
(wider east-west on the low-latitude side of a tall part). Each state is simplified to
0.005 deg (~0.5 km) before buffering and the buffered outline simplified to the same
again, which keeps a check within a few milliseconds; the margin is therefore at least
``margin_km`` - 1 km. Outlines crossing ±180 (the Aleutians) are wrapped back.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from ._antimeridian import wrap_to_world
from .errors import Forbidden

__all__ = ["BORDER_TOLERANCE_DEG", "Jurisdictions"]

BORDER_TOLERANCE_DEG = 0.02
_SIMPLIFY_DEG = 0.005
_KM_PER_DEG = 111.195
_US = "US"


@dataclass(frozen=True)
class _Outline:
    border: BaseGeometry
    margin: BaseGeometry
    name: str


def _parts(geom: BaseGeometry) -> list[Polygon]:
    if isinstance(geom, Polygon):
        return [geom]
    if isinstance(geom, MultiPolygon):
        return list(geom.geoms)
    return [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon)]


def _buffer_km(geom: BaseGeometry, km: float) -> BaseGeometry:
    """``geom`` grown by at least ``km`` in every direction (see the module docstring)."""
    grown = []
    for part in _parts(geom.simplify(_SIMPLIFY_DEG)):
        top = min(89.0, max(abs(part.bounds[1]), abs(part.bounds[3])))
        k = math.cos(math.radians(top))
        squeezed = shapely.transform(part, lambda xy, k=k: xy * [k, 1.0])
        buffered = squeezed.buffer(km / _KM_PER_DEG, quad_segs=4)
        grown.append(shapely.transform(buffered, lambda xy, k=k: xy / [k, 1.0]))
    return wrap_to_world(shapely.union_all(grown).simplify(_SIMPLIFY_DEG))


class Jurisdictions:
    """Cached jurisdiction outlines over the state polygons; thread-safe."""

    def __init__(
        self,
        states: Mapping[str, BaseGeometry],
        state_names: Mapping[str, str],
        margin_km: float,
    ) -> None:
        self._states = states
        self._names = state_names
        self.margin_km = margin_km
        self._lock = threading.Lock()
        self._buffered: dict[str, BaseGeometry] = {}
        self._outlines: dict[frozenset[str], _Outline] = {}

    def _state_margin(self, state: str) -> BaseGeometry:
        g = self._buffered.get(state)
        if g is None:
            g = self._buffered[state] = _buffer_km(self._states[state], self.margin_km)
        return g

    def outline(self, jurisdiction: Iterable[str]) -> _Outline:
        """The border and margin outlines of a jurisdiction (``["US"]`` or state codes)."""
        key = frozenset(jurisdiction)
        found = self._outlines.get(key)
        if found is not None:
            return found
        with self._lock:
            found = self._outlines.get(key)
            if found is not None:
                return found
            codes = sorted(self._states) if _US in key else sorted(key & set(self._states))
            # The whole US has no border to another US state: skip its outline (a union
            # of every state at full resolution, seconds of work no check would use).
            border = (
                shapely.Polygon()
                if _US in key
                else shapely.union_all([self._states[s] for s in codes]).buffer(
                    BORDER_TOLERANCE_DEG, quad_segs=2
                )
            )
            margin = shapely.union_all([self._state_margin(s) for s in codes])
            shapely.prepare(border)
            shapely.prepare(margin)
            name = (
                "the United States (states, DC and territories)"
                if _US in key
                else ", ".join(f"{self._names.get(s, s)} ({s})" for s in codes)
            )
            found = self._outlines[key] = _Outline(border, margin, name)
            return found

    def check(
        self,
        parts: Iterable[tuple[str, BaseGeometry]],
        jurisdiction: Sequence[str],
        states_touching: Callable[[BaseGeometry], list[str]],
    ) -> None:
        """Refuse the first part reaching outside the jurisdiction.

        ``states_touching(geom) -> list[str]`` names the US states a geometry meets.

        Raises:
            Forbidden: naming the part and the states it reaches into, or a point of it
                beyond the margin.
        """
        outline = self.outline(jurisdiction)
        us = _US in jurisdiction
        allowed = set(jurisdiction)
        for label, geom in parts:
            if outline.margin.contains(geom) and (us or outline.border.contains(geom)):
                continue  # the usual case: two prepared predicates
            if not us:
                beyond = geom.difference(outline.border)
                others = [s for s in states_touching(beyond) if s not in allowed]
                if others:
                    where = ", ".join(f"{self._names.get(s, s)} ({s})" for s in others)
                    raise Forbidden(
                        f"{label} reaches into {where}, outside this agency's jurisdiction"
                        f" {outline.name}"
                    )
            if outline.margin.contains(geom):
                continue
            out = geom.difference(outline.margin)
            pt = out.representative_point()
            raise Forbidden(
                f"{label} reaches outside {outline.name} and its {self.margin_km:g} km"
                f" margin (e.g. at {pt.y:.3f},{pt.x:.3f} lat,lon): outside this agency's"
                " jurisdiction"
            )
