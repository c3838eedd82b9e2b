"""Pilot gating (``AMBER_PUBLIC_STATES``): public delivery limited to some states.

Like the one-state pilot that preceded the nationwide launch: an alert whose area
touches none of the listed states is stored (its agency sees it, with a warning) but
not delivered to the public. An alert touching a listed state is delivered to its whole
area, so a cross-border alert is not cut at the pilot's border. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

from shapely.geometry.base import BaseGeometry

from .geo import Area
from .model import AlertRecord

__all__ = ["parse_states", "touches"]


def parse_states(text: str, known: Mapping[str, BaseGeometry] | None = None) -> frozenset[str]:
    """The states of ``AMBER_PUBLIC_STATES`` (2-digit FIPS, comma-separated); empty = all.

    Raises:
        ValueError: an entry is not a 2-digit code, or not a state ``known`` has.
    """
    out: set[str] = set()
    for item in text.split(","):
        code = item.strip()
        if not code:
            continue
        if len(code) != 2 or not code.isdigit():
            raise ValueError(f"AMBER_PUBLIC_STATES: {code!r} is not a 2-digit state FIPS code")
        if known is not None and code not in known:
            raise ValueError(f"AMBER_PUBLIC_STATES: no state with FIPS code {code}")
        out.add(code)
    return frozenset(out)


def touches(record: AlertRecord, states: Mapping[str, BaseGeometry]) -> bool:
    """Whether the alert's area touches any of ``states`` (code -> outline).

    Cost: one bounding-box test per state, an exact test only for those that pass
    (run it off the event loop for large areas).
    """
    area = Area.from_coords(record.polygons, record.circles)
    w, s, e, n = area.bbox
    for geom in states.values():
        b = geom.bounds
        if b[0] <= e and w <= b[2] and b[1] <= n and s <= b[3] and area.intersects_geometry(geom):
            return True
    return False
