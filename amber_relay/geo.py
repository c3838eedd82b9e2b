"""Pure geometry: alert areas, exact point matching, polygon validation.

An :class:`Area` is the union of polygons (shapely, x = lon, y = lat) and circles
(matched by haversine distance on a sphere of the Earth's mean radius). Boundaries
count as inside. Nothing here does I/O.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from .errors import Invalid
from .model import Circle, Position

__all__ = [
    "EARTH_RADIUS_KM",
    "Area",
    "circle_distance_km",
    "circle_polygon",
    "distances_km",
    "distinct_circles",
    "haversine_km",
    "polygon_from_rings",
]

EARTH_RADIUS_KM = 6371.0088
_KM_PER_DEG_LAT = math.pi * EARTH_RADIUS_KM / 180.0

FloatArray = npt.NDArray[np.float64]
# Up to this many circles, contains() loops in Python; beyond, one numpy call.
_SCAN_CIRCLES = 8
BoolArray = npt.NDArray[np.bool_]


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km between two (lat, lon) points."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def _haversine_many(lats: FloatArray, lons: FloatArray, c: Circle) -> FloatArray:
    return distances_km(c.lat, c.lon, lats, lons)


def distances_km(
    lat: float | FloatArray,
    lon: float | FloatArray,
    lats: npt.NDArray[np.floating[Any]],
    lons: npt.NDArray[np.floating[Any]],
) -> FloatArray:
    """Great-circle distances in km, vectorised (either side may be an array)."""
    p1, p2 = np.radians(lat), np.radians(lats)
    dp, dl = p2 - p1, np.radians(lons - lon)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    result: FloatArray = 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.sqrt(a)))
    return result


def circle_bbox(c: Circle) -> tuple[float, float, float, float]:
    """(min_lon, min_lat, max_lon, max_lat) enclosing the circle, with a small margin."""
    dlat = c.radius_km / _KM_PER_DEG_LAT * 1.001 + 1e-9
    coslat = math.cos(math.radians(min(89.9, abs(c.lat) + dlat)))
    dlon = min(180.0, dlat / max(coslat, 1e-6))
    if c.lon - dlon < -180.0 or c.lon + dlon > 180.0:
        # the circle wraps across 180 deg: a single box must span every longitude
        return (-180.0, max(-90.0, c.lat - dlat), 180.0, min(90.0, c.lat + dlat))
    return (
        max(-180.0, c.lon - dlon),
        max(-90.0, c.lat - dlat),
        min(180.0, c.lon + dlon),
        min(90.0, c.lat + dlat),
    )


def distinct_circles(circles: Sequence[Circle]) -> list[Circle]:
    """``circles`` without repeats and without circles lying inside another, in order.

    The union is unchanged; each circle dropped is one haversine test less per point
    matched, for every client, on every broadcaster.
    """
    if len(circles) < 2:
        return list(circles)
    lats = np.array([c.lat for c in circles])
    lons = np.array([c.lon for c in circles])
    radii = np.array([c.radius_km for c in circles])
    idx = np.arange(len(circles))
    keep: list[Circle] = []
    for i, c in enumerate(circles):
        # Inside a larger circle, or a repeat of an earlier one: a circle that covers
        # it is kept (the largest of any chain), so the union stays the same.
        inside = _haversine_many(lats, lons, c) + c.radius_km <= radii
        bigger = (radii > c.radius_km) | ((radii == c.radius_km) & (idx < i))
        if not (inside & bigger).any():
            keep.append(c)
    return keep


def circle_polygon(c: Circle, segments: int = 72, *, inside: bool = False) -> Polygon:
    """A polygon approximating the circle from outside (for coverage checks only).

    Vertices are placed by the spherical destination formula at a radius enlarged so
    the chords stay outside the true circle; with ``inside`` the radius is shrunk
    instead so the whole polygon lies inside the circle (a sure subset).
    """
    # 1/cos(pi/n) keeps chords outside the circle in a plane; the chords here are straight
    # in lon/lat, where the rim bulges past them by up to ~0.1 % of the radius at 71N for
    # 1000 km: 0.3 % more keeps them outside everywhere in the US. Inside: 1 % less
    # leaves the chords (0.1 % in, 0.1 % of bulge) well within the rim.
    if inside:
        r = c.radius_km * 0.99 / EARTH_RADIUS_KM
    else:
        r = c.radius_km / math.cos(math.pi / segments) * 1.003 / EARTH_RADIUS_KM
    lat1, lon1 = math.radians(c.lat), math.radians(c.lon)
    pts = []
    for i in range(segments):
        brg = 2 * math.pi * i / segments
        lat2 = math.asin(
            math.sin(lat1) * math.cos(r) + math.cos(lat1) * math.sin(r) * math.cos(brg)
        )
        lon2 = lon1 + math.atan2(
            math.sin(brg) * math.sin(r) * math.cos(lat1),
            math.cos(r) - math.sin(lat1) * math.sin(lat2),
        )
        pts.append((math.degrees(lon2), math.degrees(lat2)))
    return Polygon(pts)


def polygon_from_rings(rings: Sequence[Sequence[Sequence[float]]], label: str) -> Polygon:
    """A shapely polygon from GeoJSON rings ``[[[lon, lat], ...], ...]``, maybe invalid.

    Rings must have >= 4 positions, be closed and hold coordinates in range.
    Self-intersecting rings are not repaired here: callers repair them within bounds
    (``amber_relay._bounded.check_parts``, or :func:`repair` for trusted input),
    because refusing an AMBER alert over a drawing slip costs more than a slightly
    larger area, and report the repair back to the agency.

    Raises:
        Invalid: naming ``label`` (e.g. "area.geometry polygon 1 ring 0") and the defect.
    """
    if not rings:
        raise Invalid(f"{label}: a polygon needs at least one ring", code="invalid_geometry")
    checked: list[list[tuple[float, float]]] = []
    for i, ring in enumerate(rings):
        where = f"{label} ring {i}"
        if len(ring) < 4:
            raise Invalid(
                f"{where}: {len(ring)} positions; a ring needs at least 4 (first = last)",
                code="invalid_geometry",
            )
        pts: list[tuple[float, float]] = []
        for j, pos in enumerate(ring):
            if len(pos) < 2 or len(pos) > 3:
                raise Invalid(
                    f"{where} position {j}: expected [lon, lat], got {len(pos)} numbers",
                    code="invalid_geometry",
                )
            lon, lat = float(pos[0]), float(pos[1])
            if not (math.isfinite(lon) and math.isfinite(lat)):
                raise Invalid(f"{where} position {j}: not a finite number", code="invalid_geometry")
            if not -180.0 <= lon <= 180.0:
                raise Invalid(
                    f"{where} position {j}: longitude {lon} out of range [-180, 180]"
                    " (GeoJSON order is [lon, lat])",
                    code="coordinate_out_of_range",
                )
            if not -90.0 <= lat <= 90.0:
                raise Invalid(
                    f"{where} position {j}: latitude {lat} out of range [-90, 90]"
                    " (GeoJSON order is [lon, lat])",
                    code="coordinate_out_of_range",
                )
            pts.append((lon, lat))
        if pts[0] != pts[-1]:
            raise Invalid(
                f"{where}: not closed: first position {list(pts[0])} differs from last"
                f" {list(pts[-1])}",
                code="invalid_geometry",
            )
        if len(set(pts)) < 3:
            raise Invalid(f"{where}: fewer than 3 distinct positions", code="invalid_geometry")
        checked.append(pts)
    poly = Polygon(checked[0], checked[1:])
    # An invalid ring's shoelace area can cancel out (a symmetric bowtie), and checking
    # validity or repairing here would cost without bound (a 20,000-vertex sun of thin
    # spikes takes a CPU-second to check): refuse only what has no area whatever the
    # repair (all positions on one line); callers check and repair within bounds.
    if poly.convex_hull.area == 0:
        raise Invalid(f"{label}: encloses no area", code="invalid_geometry")
    return poly


def repair(geom: BaseGeometry) -> tuple[BaseGeometry, str | None]:
    """``geom`` made valid, and the reason it was not (``None`` if it was).

    Unbounded (``make_valid`` is quadratic or worse in crossings): for trusted input
    only; agencies' polygons go through ``amber_relay._bounded.check_parts``.
    """
    if geom.is_valid:
        return geom, None
    reason = shapely.is_valid_reason(geom)
    fixed = shapely.make_valid(geom, method="structure", keep_collapsed=False)
    if fixed.geom_type == "GeometryCollection":
        fixed = shapely.union_all(
            [g for g in fixed.geoms if g.geom_type in ("Polygon", "MultiPolygon")]
        )
    return fixed, str(reason)


def to_multipolygon_coords(geom: BaseGeometry | None) -> list[list[list[Position]]]:
    """GeoJSON MultiPolygon coordinates of a polygonal geometry (empty list for none)."""
    if geom is None or geom.is_empty:
        return []
    polys = [geom] if isinstance(geom, Polygon) else list(getattr(geom, "geoms", []))
    out: list[list[list[Position]]] = []
    for p in polys:
        if not isinstance(p, Polygon) or p.is_empty:
            continue
        rings = [p.exterior, *p.interiors]
        out.append([_positions(r) for r in rings])
    return out


def _positions(ring: BaseGeometry) -> list[Position]:
    # Through numpy: a Python loop over the coordinates took ~1 s for Alaska.
    xy = shapely.get_coordinates(ring)
    return list(zip(xy[:, 0].tolist(), xy[:, 1].tolist(), strict=True))


@dataclass(eq=False)
class Area:
    """A resolved alert area, ready for exact matching.

    Built once per alert version; ``contains``/``contains_many`` are what decides who
    gets a frame.
    """

    polygons: BaseGeometry | None
    circles: tuple[Circle, ...] = ()
    bbox: tuple[float, float, float, float] = field(init=False)
    circle_boxes: npt.NDArray[np.float64] = field(init=False, repr=False)
    """(n, 4): each circle's (min_lon, min_lat, max_lon, max_lat), for vectorised tests."""
    circle_centres: npt.NDArray[np.float64] = field(init=False, repr=False)
    """(n, 3): each circle's lat, lon, radius_km."""
    _pieces: dict[tuple[float, float, float, float], BaseGeometry] = field(
        init=False, default_factory=dict, repr=False
    )

    def __post_init__(self) -> None:
        if self.polygons is not None and self.polygons.is_empty:
            self.polygons = None
        boxes = [circle_bbox(c) for c in self.circles]
        self.circle_boxes = np.array(boxes, dtype=np.float64).reshape(-1, 4)
        self.circle_centres = np.array(
            [(c.lat, c.lon, c.radius_km) for c in self.circles], dtype=np.float64
        ).reshape(-1, 3)
        if self.polygons is not None:
            shapely.prepare(self.polygons)
            b = self.polygons.bounds
            boxes.append((b[0], b[1], b[2], b[3]))
        if not boxes:
            raise ValueError("an area needs polygons or circles")
        self.bbox = (
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )

    @classmethod
    def from_coords(
        cls, polygons: Sequence[Sequence[Sequence[Sequence[float]]]], circles: Sequence[Circle]
    ) -> Area:
        """Rebuild from stored MultiPolygon coordinates (already validated).

        Built with shapely's vectorised constructors from one flat array: this runs on
        broadcasters' event loops, and a Polygon per ring from nested lists costs ~50 ms
        for 20,000 vertices in thousands of rings (this: a few ms).
        """
        if not polygons:
            return cls(None, tuple(circles))
        rings = [ring for poly in polygons for ring in poly]
        coords = np.array(list(itertools.chain.from_iterable(rings)), dtype=np.float64)
        counts = np.array([len(r) for r in rings])
        linear = shapely.linearrings(
            coords[:, :2], indices=np.repeat(np.arange(len(rings)), counts)
        )
        owner = np.repeat(np.arange(len(polygons)), [len(p) for p in polygons])
        polys = shapely.polygons(linear, indices=owner)
        return cls(shapely.multipolygons(polys), tuple(circles))

    def contains(self, lat: float, lon: float) -> bool:
        """Whether the point is inside (or on the edge of) the area."""
        if len(self.circles) > _SCAN_CIRCLES:
            # One vectorised test (~10 us) instead of a Python loop per circle (~1 us each):
            # this runs on every hello inside the area's box.
            c = self.circle_centres
            if bool((distances_km(lat, lon, c[:, 0], c[:, 1]) <= c[:, 2]).any()):
                return True
        else:
            for c_ in self.circles:
                if haversine_km(c_.lat, c_.lon, lat, lon) <= c_.radius_km:
                    return True
        if self.polygons is not None:
            return bool(shapely.intersects_xy(self.polygons, lon, lat))
        return False

    def contains_many(self, lats: FloatArray, lons: FloatArray) -> BoolArray:
        """Vectorised :meth:`contains` over arrays of points."""
        hit: BoolArray = np.zeros(lats.shape, dtype=bool)
        for c, box in zip(self.circles, self.circle_boxes, strict=True):
            # Only points in the circle's box and not already in: with many circles most
            # points are near a few of them, and box tests cost far less than haversine.
            sel = np.flatnonzero(
                ~hit & (lons >= box[0]) & (lons <= box[2]) & (lats >= box[1]) & (lats <= box[3])
            )
            if sel.size:
                hit[sel] = _haversine_many(lats[sel], lons[sel], c) <= c.radius_km
        if self.polygons is not None:
            rest = ~hit
            if rest.any():
                hit[rest] = shapely.intersects_xy(self.polygons, lons[rest], lats[rest])
        return hit

    def contains_in_box(
        self, box: tuple[float, float, float, float], lats: FloatArray, lons: FloatArray
    ) -> BoolArray:
        """:meth:`contains_many` for points that all lie in ``box`` (lon/lat, inclusive).

        The polygons are tested clipped to the box (cached per box): a point test costs
        with the vertices near it, not with the whole outline's (a state at 1:500k has
        tens of thousands, and a ray across it crosses hundreds of edges). Exact: inside
        the box the clipped polygons and the polygons are the same set.
        """
        hit: BoolArray = np.zeros(lats.shape, dtype=bool)
        if self.circles:
            # Only the circles whose box meets this one: with 100 circles a boundary
            # cell is near a few of them.
            b = self.circle_boxes
            near = (b[:, 0] <= box[2]) & (b[:, 2] >= box[0]) & (b[:, 1] <= box[3])
            for i in np.flatnonzero(near & (b[:, 3] >= box[1])).tolist():
                c = self.circles[i]
                hit |= _haversine_many(lats, lons, c) <= c.radius_km
        if self.polygons is not None:
            rest = ~hit
            if rest.any():
                piece = self._pieces.get(box)
                if piece is None:
                    piece = shapely.clip_by_rect(self.polygons, *box)
                    shapely.prepare(piece)
                    self._pieces[box] = piece
                hit[rest] = shapely.intersects_xy(piece, lons[rest], lats[rest])
        return hit

    def covers_box(self, min_lon: float, min_lat: float, max_lon: float, max_lat: float) -> bool:
        """Whether the whole lon/lat box is inside the polygons (circles not considered)."""
        if self.polygons is None:
            return False
        return bool(self.polygons.contains(shapely.box(min_lon, min_lat, max_lon, max_lat)))

    def intersects_geometry(self, geom: BaseGeometry) -> bool:
        """Whether the area touches ``geom`` (a county, for county-tagged clients).

        Circles are tested in a local equidistant projection around their centre,
        accurate to well under a kilometre at county scale.
        """
        if self.polygons is not None and self.polygons.intersects(geom):
            return True
        for c in self.circles:
            if circle_distance_km(c, geom) <= c.radius_km:
                return True
        return False


def circle_distance_km(c: Circle, geom: BaseGeometry) -> float:
    """Distance in km from the circle's centre to ``geom`` (0 inside), within metres."""
    # Azimuthal equidistant projection about the centre: the distance from the centre to
    # every vertex is the exact haversine distance; segmentizing keeps edges short enough
    # (0.05 deg) that the straight edges between projected vertices stay within metres.
    lat1, lon1 = math.radians(c.lat), math.radians(c.lon)

    def project(xy: FloatArray) -> FloatArray:
        lat2, dl = np.radians(xy[:, 1]), np.radians(xy[:, 0]) - lon1
        a = np.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * np.cos(lat2) * np.sin(dl / 2) ** 2
        dist = 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.sqrt(a)))
        brg = np.arctan2(
            np.sin(dl) * np.cos(lat2),
            math.cos(lat1) * np.sin(lat2) - math.sin(lat1) * np.cos(lat2) * np.cos(dl),
        )
        out: FloatArray = np.column_stack([dist * np.sin(brg), dist * np.cos(brg)])
        return out

    local = shapely.transform(shapely.segmentize(geom, 0.05), project)
    return float(local.distance(shapely.Point(0.0, 0.0)))
