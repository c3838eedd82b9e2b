"""Where the load test's clients stand, and the alerts it posts.

Clients are placed at random inside a real county polygon (from the shipped geodata)
and around it, in a chosen proportion. Points inside closer than ``MARGIN_DEG`` to the
county's edge are not used (a point on the line itself would test coordinate
round-trips rather than the broadcaster), nor points outside closer than
``MARGIN_OUT_DEG`` (the SAME area's deliberate widening).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import shapely

from amber_relay import geodata

__all__ = ["Placement", "alert_doc", "place", "publish_payload", "sentinel_doc"]

# ~50 m: far above float round-off, far below the county's size.
MARGIN_DEG = 0.0005
# Outside clients keep ~300 m from the line: a SAME area is widened by 100 m
# (AMBER_SAME_WIDEN_M) so that nobody inside is missed, and a client within that strip
# is alerted on purpose (docs/geodata.md).
MARGIN_OUT_DEG = 0.003
# How far around the county's box the outside clients are scattered.
PAD_DEG = 0.3
# The alert schema's longest text field (characters).
_TEXT_MAX = 4000


@dataclass(frozen=True)
class Placement:
    """Client positions (lat, lon) and which of them are inside the county."""

    county: str
    name: str
    points: list[tuple[float, float]]
    inside: list[bool]
    bbox: tuple[float, float, float, float]
    """(min_lon, min_lat, max_lon, max_lat) enclosing every point."""


def place(county: str, n: int, inside_fraction: float, seed: int = 1) -> Placement:
    """``n`` points, ``round(n * inside_fraction)`` of them inside ``county``, shuffled.

    Raises:
        ValueError: unknown county FIPS code.
    """
    geo = geodata.load()
    geom = geo.county(county)
    if geom is None:
        raise ValueError(f"unknown county {county!r}: expected a 5-digit FIPS code")
    rng = np.random.default_rng(seed)
    n_in = round(n * inside_fraction)
    boundary = geom.boundary
    shapely.prepare(boundary)
    x0, y0, x1, y1 = geom.bounds
    inside_pts = _draw(rng, geom, boundary, (x0, y0, x1, y1), n_in, want_inside=True)
    box = (x0 - PAD_DEG, y0 - PAD_DEG, x1 + PAD_DEG, y1 + PAD_DEG)
    outside_pts = _draw(rng, geom, boundary, box, n - n_in, want_inside=False)
    pts = [(lat, lon, True) for lon, lat in inside_pts] + [
        (lat, lon, False) for lon, lat in outside_pts
    ]
    order = rng.permutation(len(pts))
    shuffled = [pts[i] for i in order]
    name = geo.county_names.get(county, county)
    return Placement(
        county=county,
        name=name,
        points=[(lat, lon) for lat, lon, _ in shuffled],
        inside=[flag for _, _, flag in shuffled],
        bbox=box,
    )


def _draw(
    rng: np.random.Generator,
    geom: Any,
    boundary: Any,
    box: tuple[float, float, float, float],
    count: int,
    *,
    want_inside: bool,
) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    while len(out) < count:
        k = max(1024, 2 * (count - len(out)))
        xs = rng.uniform(box[0], box[2], k)
        ys = rng.uniform(box[1], box[3], k)
        inside = shapely.contains_xy(geom, xs, ys)
        keep = inside if want_inside else ~inside
        xs, ys = xs[keep], ys[keep]
        margin = MARGIN_DEG if want_inside else MARGIN_OUT_DEG
        far = shapely.distance(boundary, shapely.points(xs, ys)) > margin
        out.extend(zip(xs[far].round(6).tolist(), ys[far].round(6).tolist(), strict=True))
    return out[:count]


def _expires() -> str:
    return (datetime.now(UTC) + timedelta(hours=1)).isoformat(timespec="seconds")


def alert_doc(ident: str, county: str, frame_bytes: int) -> dict[str, Any]:
    """A JSON alert on the county (by SAME code) whose interrupt frame is ~``frame_bytes``.

    The description pads the frame (the fixed part of an interrupt for this document
    is ~230 bytes plus the id: times, event, headline, call, infos scaffolding); past
    the schema's 4,000 characters per text, translations carry the rest.
    """
    pad = max(0, frame_bytes - 231 - len(ident))
    doc: dict[str, Any] = {
        "identifier": ident,
        "status": "actual",
        "headline": "AMBER Alert: load test",
        "expires": _expires(),
        "area": {"same": [f"0{county}"]},
        "description": _filler(min(pad, _TEXT_MAX)),
    }
    pad -= _TEXT_MAX
    translations: list[dict[str, str]] = []
    while pad > 0:
        # Each translation costs ~60 bytes of scaffolding besides its description.
        size = min(_TEXT_MAX, max(1, pad - 60))
        translations.append(
            {
                "language": f"x-{len(translations)}",
                "headline": "AMBER",
                "description": _filler(size),
            }
        )
        pad -= size + 60
    if translations:
        doc["translations"] = translations
    return doc


def sentinel_doc(ident: str, bbox: tuple[float, float, float, float]) -> dict[str, Any]:
    """An alert covering every client (the box around all points, plus a margin)."""
    w, s, e, n = bbox[0] - 0.1, bbox[1] - 0.1, bbox[2] + 0.1, bbox[3] + 0.1
    ring = [[w, s], [e, s], [e, n], [w, n], [w, s]]
    return {
        "identifier": ident,
        "status": "actual",
        "headline": "AMBER Alert: load test sentinel",
        "expires": _expires(),
        "area": {"geometry": {"type": "Polygon", "coordinates": [ring]}},
    }


def publish_payload(ident: str, frame_bytes: int) -> bytes:
    """The baselines' frame payload: an interrupt-shaped JSON text of ``frame_bytes``."""
    head = {"type": "interrupt", "alert": {"id": ident, "version": 1, "description": ""}}
    base = len(json.dumps(head, separators=(",", ":")))
    head["alert"]["description"] = _filler(max(0, frame_bytes - base))  # type: ignore[index]
    return json.dumps(head, separators=(",", ":")).encode()


def _filler(n: int) -> str:
    text = "Child last seen near the intersection; vehicle description follows. "
    return (text * (n // len(text) + 1))[:n]
