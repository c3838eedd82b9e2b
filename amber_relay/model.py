"""The alert's types: what an agency submits as JSON, and the normalized record.

``AlertIn`` is the published JSON schema of ``POST /v1/alerts`` (see
``docs/alert.schema.json``, generated from these types). CAP 1.2 messages are parsed
into the same ``AlertIn`` shape (plus the CAP envelope), so validation, storage and
delivery see one form. ``AlertContent`` is what a client is shown; ``AlertRecord`` is
what the worker and broadcasters keep.

Coordinates: GeoJSON parts are ``[lon, lat]`` as RFC 7946 says; every other place
names them (``lat``, ``lon``).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

__all__ = [
    "AlertContent",
    "AlertIn",
    "AlertRecord",
    "AreaIn",
    "Circle",
    "Geometry",
    "MultiPolygonGeometry",
    "PolygonGeometry",
    "Info",
]

Lat = Annotated[float, Meta(ge=-90, le=90, description="Latitude, WGS 84 degrees")]
Lon = Annotated[float, Meta(ge=-180, le=180, description="Longitude, WGS 84 degrees")]
TEXT_MAX_CHARS = 10_000
"""Limit of every free-text field (headline, description, instruction, event, sender
name, contact, area description, captions). One rule: at least twice the longest value
of any text field in the real CAP corpus (``tests/data/cap/real``, measured by
``tools/cap_field_lengths.py``) or in known real messages (a 4,991-character NWS
description), rounded up; docs/alerts.md gives the figures."""
SHORT_MAX_CHARS = 200
"""Limit of the structured one-line fields of the JSON schema (a name, a plate, a hair
colour) and of identifiers."""
ShortText = Annotated[str, Meta(max_length=SHORT_MAX_CHARS)]
Text = Annotated[str, Meta(max_length=TEXT_MAX_CHARS)]
EventCode = Annotated[str, Meta(pattern=r"^[A-Z]{3}$", description="SAME event code")]
Status = Literal["actual", "exercise", "system", "test", "draft"]


class Circle(Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """A circle: centre and radius on the sphere (haversine distance)."""

    lat: Lat
    lon: Lon
    radius_km: Annotated[float, Meta(gt=0, description="Radius in kilometres")]


class PolygonGeometry(
    Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="Polygon"
):
    """A GeoJSON Polygon: rings of ``[lon, lat]`` positions, the first ring the outline."""

    coordinates: list[list[list[float]]]


class MultiPolygonGeometry(
    Struct, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="MultiPolygon"
):
    """A GeoJSON MultiPolygon: a list of Polygon coordinate arrays."""

    coordinates: list[list[list[list[float]]]]


Geometry = PolygonGeometry | MultiPolygonGeometry


class AreaIn(Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """Where the alert applies: the union of its geometry, circles and SAME county codes.

    At least one of the three parts is required.
    """

    geometry: Geometry | None = None
    circles: list[Circle] = []
    same: list[Annotated[str, Meta(pattern=r"^[0-9]{6}$")]] = []
    """SAME/FIPS codes PSSCCC: 0 + state FIPS + county FIPS (``048029``); ``048000`` = Texas.
    Marine zone codes (state part 57-59, 61, 65, 73, 75, 77, 91-98) are ignored with a
    warning."""
    description: Text | None = None


class Person(Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """A child or suspect as shown on the interrupt screen; every field optional."""

    name: ShortText | None = None
    age: Annotated[int, Meta(ge=0, le=130)] | None = None
    sex: ShortText | None = None
    race: ShortText | None = None
    height: ShortText | None = None
    weight: ShortText | None = None
    hair: ShortText | None = None
    eyes: ShortText | None = None
    clothing: Text | None = None
    description: Text | None = None
    photos: list[Annotated[int, Meta(ge=0)]] = []
    """Indexes into the alert's ``photos`` list."""


class Vehicle(Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    year: Annotated[int, Meta(ge=1900, le=2100)] | None = None
    make: ShortText | None = None
    model: ShortText | None = None
    body: ShortText | None = None
    color: ShortText | None = None
    plate: ShortText | None = None
    plate_state: ShortText | None = None
    description: Text | None = None


class PhotoIn(Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """A photo by ``url`` (fetched once by the worker) or inline base64 ``data``."""

    url: Annotated[str, Meta(max_length=2000, pattern=r"^https?://")] | None = None
    data: str | None = None
    caption: Text | None = None


class Photo(Struct, frozen=True, omit_defaults=True):
    """A stored photo as clients get it: content-addressed, served by the API."""

    sha256: str
    url: str
    mime_type: str
    width: int
    height: int
    caption: str | None = None


class LastSeen(Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    place: ShortText | None = None
    lat: Lat | None = None
    lon: Lon | None = None
    time: str | None = None
    direction: ShortText | None = None


class Contact(Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    name: Text | None = None
    phone: Annotated[str, Meta(max_length=40)] | None = None


class Link(Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    url: Annotated[str, Meta(max_length=2000, pattern=r"^https?://")]
    title: ShortText | None = None


class Info(Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """The text of an alert in one language (one CAP ``info`` block)."""

    language: Annotated[str, Meta(max_length=35)] = "en-US"
    headline: Text = ""
    description: Text | None = None
    instruction: Text | None = None
    short_text: Annotated[str, Meta(max_length=360)] | None = None
    """WEA 90-character text (CAP ``CMAMtext``)."""
    long_text: Annotated[str, Meta(max_length=1000)] | None = None
    """WEA 360-character text (CAP ``CMAMlongtext``)."""


class AlertIn(Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """An alert as an agency submits it with ``Content-Type: application/json``.

    Sending the same ``identifier`` again with different content is an update
    (version + 1); the same body again is answered idempotently.
    """

    identifier: Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[^\s/,]+$")]
    """No spaces, slashes or commas (CAP forbids them too; ids travel in URLs and lists)."""
    status: Status
    headline: Annotated[str, Meta(min_length=1, max_length=TEXT_MAX_CHARS)]
    expires: str
    """RFC 3339 time with an offset, e.g. ``2026-11-22T15:00:00-06:00``."""
    area: AreaIn
    sent: str | None = None
    language: Annotated[str, Meta(max_length=35)] = "en-US"
    event: Text = "Child Abduction Emergency"
    event_code: EventCode = "CAE"
    """SAME event code (CAP ``eventCode`` named ``SAME``); only the deployment's accepted
    codes are published (``CAE`` by default); RMT, RWT, DMO and NPT are never public."""
    sender_name: Text | None = None
    description: Text | None = None
    instruction: Text | None = None
    short_text: Annotated[str, Meta(max_length=360)] | None = None
    long_text: Annotated[str, Meta(max_length=1000)] | None = None
    translations: list[Info] = []
    """The same alert in other languages; the client picks its language."""
    children: list[Person] = []
    suspects: list[Person] = []
    vehicles: list[Vehicle] = []
    photos: list[PhotoIn] = []
    last_seen: LastSeen | None = None
    contact: Contact | None = None
    links: list[Link] = []


class AlertContent(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What the interrupt screen shows: one version of one alert, in every language."""

    id: str
    version: int
    sent: str
    expires: str
    event: str
    sender_name: str | None = None
    area_description: str | None = None
    infos: list[Info]
    """First the primary language, then translations."""
    children: list[Person] = []
    suspects: list[Person] = []
    vehicles: list[Vehicle] = []
    photos: list[Photo] = []
    last_seen: LastSeen | None = None
    contact: Contact | None = None
    links: list[Link] = []
    call: str = "911"

    @property
    def headline(self) -> str:
        return self.infos[0].headline if self.infos else ""


Position = tuple[float, float]
"""(lon, lat) of a stored area. A tuple, not a list: msgspec decodes a tuple of floats
untracked by the cyclic GC, so a whole state's record (170,000 vertices) neither costs a
collection pass while it is decoded nor burdens every later one (48 ms -> 2.5 ms for a
full collection with three Alaska records held; decoding 44 -> 32 ms)."""


class AlertRecord(Struct, frozen=True, kw_only=True):
    """One stored version of an alert: content, resolved area, lifecycle times.

    ``polygons`` is the resolved area (geometry, SAME counties) as MultiPolygon
    coordinates ``[[(lon, lat), ...]]``; circles stay circles so they are matched by
    haversine distance, not a degree buffer (repeats and circles inside others are
    dropped at ingest).
    """

    id: str
    version: int
    agency: str
    status: Status
    expires_ts: float
    sent_ts: float
    polygons: list[list[list[Position]]]
    circles: list[Circle] = []
    same: list[str] = []
    content: AlertContent
    pending_photos: list[PhotoIn] = []
    regions: list[str] | None = None
    """Sorted 5-digit FIPS codes of the counties the area touches (county-tagged
    clients are matched by these); computed once at ingest, so broadcasters need no
    county polygons. ``None`` in records written before it existed."""
    bbox: tuple[float, float, float, float] | None = None
    """(min_lon, min_lat, max_lon, max_lat) of the whole area, circles included."""


def to_builtins(obj: object) -> object:
    """Plain Python (dict/list/str) form of a Struct, for JSON responses."""
    return msgspec.to_builtins(obj)
