"""Private helpers of :mod:`amber_relay.cap`: safe XML loading, element access, and
the parts of an ``info`` that become the area and the photos.

Every error names where it happened the way an agency's operator reads their own
message: ``info 0 area 1 polygon 0: ...``. Coordinates are converted from CAP's
``lat,lon`` pairs to GeoJSON ``[lon, lat]`` here, once.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Sequence
from xml.etree.ElementTree import Element, ParseError
from xml.parsers.expat import ErrorString

import defusedxml.ElementTree as DefusedET
from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden

from ._geocodes import as_same
from .errors import Invalid, Malformed
from .ingest import decode_utf8
from .model import TEXT_MAX_CHARS

NS = "urn:oasis:names:tc:emergency:cap:1.2"
_PREFIX = "{" + NS + "}"

# Decimal degrees only: float() would also take "nan", "inf", "1_0" and "1e2", none of
# which a CAP sender means as a coordinate.
_NUM = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_PAIR = re.compile(rf"({_NUM}),({_NUM})")
_NUMBER = re.compile(_NUM)
# "29.6, -98.7" is a common slip; reading it as "29.6,-98.7" is unambiguous, so it is
# not worth refusing an AMBER alert over.
_COMMA_SPACE = re.compile(r"\s*,\s*")
_SAME = re.compile(r"[0-9]{6}")
# The encoding named by an XML declaration (XML 1.0 section 4.3.3), read from the ASCII
# bytes it is written in.
_DECLARED = re.compile(rb"""^<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z][A-Za-z0-9._-]*)["']""")
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")


def load(body: bytes) -> Element:
    """The root ``alert`` element of a CAP 1.2 document.

    The bytes go to the XML parser, which honours the XML declaration and a byte order
    mark: UTF-8 (the default), UTF-16 with a BOM, ISO-8859-1, windows-1252 and the other
    single-byte encodings Python knows. Multi-byte encodings other than UTF-8/16 are
    refused.

    Raises:
        Malformed: not in its declared encoding (``bad_utf8`` for UTF-8, with the byte
            and offset), an unsupported encoding (``bad_encoding``), not well-formed, or
            declaring a DTD, entities or external references.
        Invalid: the root is not a CAP 1.2 ``alert``.
    """
    declared = _DECLARED.match(body)
    utf8 = declared is None or declared[1].lower() in (b"utf-8", b"utf8")
    if utf8 and not body.startswith(_BOMS):
        # expat would say only "not well-formed (invalid token)"; this names the byte.
        decode_utf8(body)
    try:
        root: Element = DefusedET.fromstring(
            body, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DTDForbidden:
        raise Malformed(
            "XML with a document type declaration (<!DOCTYPE>) is refused; CAP needs none",
            code="forbidden_xml",
        ) from None
    except EntitiesForbidden:
        raise Malformed("XML entity declarations are refused", code="forbidden_xml") from None
    except ExternalReferenceForbidden:
        raise Malformed("XML external references are refused", code="forbidden_xml") from None
    except ParseError as exc:
        line, column = exc.position
        raise Malformed(
            f"malformed XML: line {line} column {column}: {ErrorString(exc.code)}",
            code="bad_xml",
        ) from None
    except (ValueError, LookupError) as exc:
        # After defusedxml's own errors, which are ValueErrors too: pyexpat refuses
        # multi-byte encodings other than UTF-8/16 this way, and a declared name
        # Python does not know at all is a LookupError.
        name = declared[1].decode("ascii") if declared else "?"
        raise Malformed(
            f"XML encoding {name!r} is not supported ({exc}); send UTF-8", code="bad_encoding"
        ) from None
    ns, _, local = root.tag[1:].rpartition("}") if root.tag.startswith("{") else ("", "", root.tag)
    if local != "alert":
        raise Invalid(
            f"root element is <{local[:40]}>; a CAP message is an <alert>", code="cap_not_alert"
        )
    if ns != NS:
        found = f"namespace {ns[:80]!r}" if ns else "no namespace"
        raise Invalid(f"<alert> has {found}; this hook reads CAP 1.2 ({NS})", code="cap_namespace")
    return root


def tag(name: str) -> str:
    """The qualified tag of a CAP 1.2 element."""
    return _PREFIX + name


def children(parent: Element, name: str) -> list[Element]:
    """The CAP child elements called ``name``, in document order."""
    return parent.findall(tag(name))


def element_text(el: Element, where: str) -> str:
    """The stripped text of a text-only element.

    Raises:
        Invalid: the element holds child elements (CAP text fields are plain strings;
            flattening them could silently drop or reorder alert text).
    """
    if len(el):
        name = el.tag.rpartition("}")[2]
        raise Invalid(f"<{name}> in {where} must hold text, not elements", code="cap_bad_value")
    return (el.text or "").strip()


def opt_text(parent: Element, name: str, where: str) -> str | None:
    """Text of an optional single element; ``None`` when absent or empty.

    Raises:
        Invalid: the element appears more than once, or holds elements.
    """
    found = children(parent, name)
    if not found:
        return None
    if len(found) > 1:
        raise Invalid(f"duplicate <{name}> in {where}", code="cap_duplicate_field")
    return element_text(found[0], where) or None


def req_text(parent: Element, name: str, where: str) -> str:
    """Text of a required single element.

    Raises:
        Invalid: missing, empty, duplicated, or holding elements.
    """
    found = children(parent, name)
    if not found:
        raise Invalid(f"missing <{name}> in {where}", code="cap_missing_field")
    value = opt_text(parent, name, where)
    if value is None:
        raise Invalid(f"empty <{name}> in {where}", code="cap_missing_field")
    return value


def _short(token: str) -> str:
    return repr(token if len(token) <= 40 else token[:40] + "...")


def _lat_lon(token: str, where: str) -> tuple[float, float]:
    m = _PAIR.fullmatch(token)
    if m is None:
        raise Invalid(
            f"{where}: {_short(token)} is not a 'lat,lon' pair", code="cap_bad_coordinate"
        )
    lat, lon = float(m[1]), float(m[2])
    if not -90 <= lat <= 90:
        raise Invalid(
            f"{where}: latitude {m[1]} in {_short(token)} is outside [-90, 90]"
            " (CAP pairs are lat,lon)",
            code="coordinate_out_of_range",
        )
    if not -180 <= lon <= 180:
        raise Invalid(
            f"{where}: longitude {m[2]} in {_short(token)} is outside [-180, 180]",
            code="coordinate_out_of_range",
        )
    return lat, lon


class AreaUnion:
    """The union of CAP ``area`` elements, as the dict form of :class:`~.model.AreaIn`.

    Identical polygons, circles and SAME codes are kept once: senders repeat the same
    area in every language's ``info``, and counting it twice would halve the vertex
    budget.
    """

    def __init__(self, max_vertices: int, warnings: list[str]) -> None:
        self._max_vertices = max_vertices
        self._warnings = warnings
        self._vertices = 0
        self._seen_text: set[tuple[str, ...]] = set()
        # Dicts as ordered sets: a hostile message may carry tens of thousands of parts,
        # so the de-duplication has to stay linear.
        self._rings: dict[tuple[tuple[float, float], ...], None] = {}
        self._circles: dict[tuple[float, float, float], None] = {}
        self._same: dict[str, None] = {}
        self.description: str | None = None
        self.count = 0

    def add(self, area: Element, where: str) -> None:
        """Parse one ``area`` element into the union.

        Raises:
            Invalid: missing ``areaDesc``, a bad polygon, circle or SAME code, no part
                this hook can target, or the vertex limit passed.
        """
        desc = req_text(area, "areaDesc", where)
        if self.description is None:
            self.description = desc  # refused by the schema when too long, never cut
        self.count += 1
        parts = 0
        for k, el in enumerate(children(area, "polygon")):
            parts += self._polygon(element_text(el, where), f"{where} polygon {k}")
        for k, el in enumerate(children(area, "circle")):
            parts += self._circle(element_text(el, where), f"{where} circle {k}")
        parts += self._geocodes(area, where)
        if parts == 0:
            raise Invalid(f"{where} has no polygon, circle or SAME geocode", code="cap_empty_area")

    def _polygon(self, text: str, where: str) -> int:
        tokens = tuple(_COMMA_SPACE.sub(",", text).split())
        n = len(tokens)
        if n < 4:
            raise Invalid(
                f"{where}: {n} points; CAP needs at least 4 with the first repeated last",
                code="cap_bad_polygon",
            )
        if tokens in self._seen_text:
            return 1
        self._seen_text.add(tokens)
        # Counted before the floats are built, so an oversized polygon costs no memory.
        self._vertices += n
        if self._vertices > self._max_vertices:
            raise Invalid(
                f"{where}: the polygons reach {self._vertices} vertices in all; the limit is"
                f" {self._max_vertices} (simplify them, or use SAME county codes)",
                code="too_many_vertices",
            )
        points = [_lat_lon(t, where) for t in tokens]
        if points[0] != points[-1]:
            raise Invalid(
                f"{where}: not closed; the first point {tokens[0]} must be repeated last"
                f" (the last is {_short(tokens[-1])})",
                code="cap_bad_polygon",
            )
        self._rings.setdefault(tuple((lon, lat) for lat, lon in points))
        return 1

    def _circle(self, text: str, where: str) -> int:
        tokens = _COMMA_SPACE.sub(",", text).split()
        if len(tokens) != 2:
            raise Invalid(
                f"{where}: {_short(text)} is not 'lat,lon radius' (radius in km)",
                code="cap_bad_circle",
            )
        lat, lon = _lat_lon(tokens[0], where)
        if _NUMBER.fullmatch(tokens[1]) is None or float(tokens[1]) <= 0:
            raise Invalid(
                f"{where}: radius {_short(tokens[1])} must be a number of km greater than 0",
                code="cap_bad_circle",
            )
        self._circles.setdefault((lat, lon, float(tokens[1])))
        return 1

    def _geocodes(self, area: Element, where: str) -> int:
        found = 0
        ignored: dict[str, int] = {}
        for k, el in enumerate(children(area, "geocode")):
            gwhere = f"{where} geocode {k}"
            name = req_text(el, "valueName", gwhere)
            value = req_text(el, "value", gwhere)
            if name.upper() != "SAME":
                alias = as_same(name, value)
                if alias is None:
                    ignored[name] = ignored.get(name, 0) + 1
                else:
                    found += 1
                    self._same.setdefault(alias)
                continue
            if _SAME.fullmatch(value) is None:
                raise Invalid(
                    f"{gwhere}: SAME value {_short(value)} is not 6 digits (PSSCCC)",
                    code="cap_bad_geocode",
                )
            found += 1
            self._same.setdefault(value)
        for name, n in ignored.items():
            self._warnings.append(
                f"{where}: {n} {_short(name)} geocode(s) ignored; only county codes (SAME,"
                " FIPS6, UGC counties) are resolved"
            )
        return found

    def to_dict(self) -> dict[str, object]:
        """The union in the dict form ``msgspec.convert`` turns into ``AreaIn``."""
        out: dict[str, object] = {
            "circles": [{"lat": a, "lon": o, "radius_km": r} for a, o, r in self._circles],
            "same": list(self._same),
            "description": self.description,
        }
        rings = [[[lon, lat] for lon, lat in ring] for ring in self._rings]
        if len(rings) == 1:
            out["geometry"] = {"type": "Polygon", "coordinates": rings}
        elif rings:
            out["geometry"] = {"type": "MultiPolygon", "coordinates": [[r] for r in rings]}
        return out


def union_area(
    infos: Sequence[tuple[int, Element]], max_vertices: int, warnings: list[str]
) -> dict[str, object]:
    """The union of the areas of ``(info index, info)`` pairs, primary info first.

    Raises:
        Invalid: a bad area (see :meth:`AreaUnion.add`), or no area at all.
    """
    union = AreaUnion(max_vertices, warnings)
    for i, info in infos:
        for j, el in enumerate(children(info, "area")):
            union.add(el, f"info {i} area {j}")
    if union.count == 0:
        raise Invalid(
            f"missing <area> in info {infos[0][0]}: an alert needs at least one area",
            code="cap_missing_field",
        )
    return union.to_dict()


def cancel_area(info: Element, where: str, warnings: list[str]) -> dict[str, object]:
    """Only the description of a Cancel's area: a Cancel is never refused over its area,
    since refusing it would leave the alert live (an over-long description is dropped
    with a warning)."""
    first = info.find(tag("area"))
    desc = (first.findtext(tag("areaDesc")) or "").strip() if first is not None else ""
    if len(desc) > TEXT_MAX_CHARS:
        warnings.append(
            f"{where} area 0 <areaDesc>: {len(desc)} characters; the limit is"
            f" {TEXT_MAX_CHARS}; not kept (a Cancel is never refused over its area)"
        )
        return {"description": None}
    return {"description": desc or None}


def parse_photos(
    infos: Sequence[tuple[int, Element]], origin: dict[str, str], warnings: list[str]
) -> list[dict[str, object]]:
    """Image resources of ``(info index, info)`` pairs as ``PhotoIn`` dicts, each once.

    Records where each photo came from in ``origin`` (msgspec path -> CAP location).

    Raises:
        Invalid: a ``derefUri`` that is not base64.
    """
    photos: list[dict[str, object]] = []
    seen: set[tuple[str | None, str | None]] = set()
    for i, info in infos:
        for j, res in enumerate(children(info, "resource")):
            where = f"info {i} resource {j}"
            mime = (opt_text(res, "mimeType", where) or "").partition(";")[0].strip().lower()
            if mime not in _IMAGE_TYPES:
                continue
            caption = opt_text(res, "resourceDesc", where)
            deref = opt_text(res, "derefUri", where)
            uri = opt_text(res, "uri", where)
            photo: dict[str, object]
            key: tuple[str | None, str | None]
            if deref is not None:
                data = "".join(deref.split())
                try:
                    binascii.a2b_base64(data, strict_mode=True)
                except binascii.Error as exc:
                    raise Invalid(
                        f"{where}: <derefUri> is not base64 ({exc})", code="cap_bad_resource"
                    ) from None
                key, photo = (None, data), {"data": data, "caption": caption}
            elif uri is not None and uri.startswith(("http://", "https://")):
                key, photo = (uri, None), {"url": uri, "caption": caption}
            else:
                warnings.append(f"{where}: image without an http(s) <uri> or a <derefUri>; ignored")
                continue
            if key in seen:
                continue
            seen.add(key)
            origin[f"$.photos[{len(photos)}].caption"] = f"{where} <resourceDesc>"
            origin[f"$.photos[{len(photos)}].url"] = f"{where} <uri>"
            photos.append(photo)
    return photos
