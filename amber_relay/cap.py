"""CAP 1.2 messages (``application/cap+xml``) into the envelope and an :class:`AlertIn`.

Pure: bytes in, a :class:`CapMessage` or a :class:`~amber_relay.errors.Rejected` out.
The XML is read by defusedxml with DTDs, entities and external references forbidden,
so XXE, billion laughs and remote DTDs are refused before any expansion.

Decisions where CAP 1.2, IPAWS and this hook differ or CAP leaves a choice:

- **Encoding.** The body is parsed as bytes, honouring its XML declaration and byte
  order mark (XML 1.0 §4.3.3): UTF-8 by default, UTF-16 with a BOM, ISO-8859-1,
  windows-1252 and other single-byte encodings. Bytes that are not valid UTF-8 in a
  UTF-8 document are refused naming the byte and its offset.
- **Event.** The SAME ``eventCode`` (IPAWS profile: exactly one per info, the same in
  every info) is the event; a message without one is refused, nothing is inferred from
  ``<event>``. Which codes are published is the deployment's policy
  (:mod:`amber_relay.policy`).
- **"Z" times.** CAP 1.2 §3.2 forbids "Z" (UTC is written ``-00:00``), but many
  generators emit it and its meaning is unambiguous: it is read as ``-00:00`` with a
  warning. A time without an offset is refused. The envelope keeps ``sent`` as
  written, since later messages quote it verbatim in ``references``; the ``AlertIn``
  gets the ``-00:00`` form.
- **Several infos.** One ``info`` per language: the en-US one (else the first) is the
  primary text, the others become ``translations``. An info repeating a language
  already taken is not shown (warning). ``expires`` comes from the primary info and is
  required (IPAWS requires it; CAP leaves it optional).
- **Areas.** The area is the union of every ``area`` of every info, with identical
  polygons, circles and SAME codes kept once: AMBER senders repeat the same area in
  each language, and a union never under-alerts if they do not. ``areaDesc`` of the
  primary info's first area is the description (never shortened: an over-long one is
  refused like any text). Only SAME geocodes are resolved; UGC, FIPS6 and others are
  ignored with a warning.
- **Photos.** Image resources (JPEG, PNG, WebP) of every info, kept once; an inline
  ``derefUri`` is preferred to a ``uri``, which the worker would have to fetch.
- **Cancel.** ``info`` is optional; when present only its text is read. Its areas
  are not parsed: a Cancel is never refused over geometry, since refusing it would
  leave the alert live. Without ``expires`` it takes ``sent``.
- **Leniency.** Element order is not enforced, unknown and foreign elements are
  ignored, and ``lat, lon`` with a space after the comma is read as ``lat,lon``.
  Single-valued elements may not repeat, and text elements may not hold elements.
- **Enumerations.** ``status``, ``msgType`` and ``scope`` must be spelled as CAP does
  (``Actual``); the envelope holds them lowercased. ``Ack`` and ``Error`` are refused.
  ``scope`` is reported, not enforced: refusing Restricted or Private is the caller's call.
- **Cost.** Work is linear in the body (de-duplication uses sets), and warnings stop
  at 20 lines plus a count, since they go back in the response.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from xml.etree.ElementTree import Element

import msgspec

from . import policy
from ._cap_area import (
    cancel_area,
    children,
    element_text,
    load,
    opt_text,
    parse_photos,
    req_text,
    union_area,
)
from ._cap_event import common_event_code, info_event_code
from ._limits import length_detail
from .errors import Invalid
from .ingest import parse_time
from .model import TEXT_MAX_CHARS, AlertIn

__all__ = ["CapMessage", "CapReference", "parse_cap"]

_STATUSES = ("Actual", "Exercise", "System", "Test", "Draft")
_MSG_TYPES = ("Alert", "Update", "Cancel", "Ack", "Error")
_SCOPES = ("Public", "Restricted", "Private")
_INFO_REQUIRED = ("event", "urgency", "severity", "certainty")
_MAX_ID = 200  # AlertIn.identifier's cap; a reference must be able to quote it
_MAX_NOTE = TEXT_MAX_CHARS
_MAX_WARNINGS = 20
_SPACE_OR_COMMA = re.compile(r"[\s,]")
_AT = re.compile(r"^(.*) - at `(\$[^`]*)`$", re.DOTALL)


class CapReference(msgspec.Struct, frozen=True):
    """One earlier message named in ``references``, its fields as the sender wrote them."""

    sender: str
    identifier: str
    sent: str


class CapMessage(msgspec.Struct, frozen=True, kw_only=True):
    """A checked CAP 1.2 message: the envelope and its content as an ``AlertIn``.

    ``status``, ``msg_type`` and ``scope`` are lowercased (``"actual"``, ``"update"``,
    ``"public"``); ``msg_type`` is ``"alert"``, ``"update"`` or ``"cancel"``. ``sent``
    is as written. ``alert`` is ``None`` only for a Cancel without ``info``; for a
    Cancel its area is empty (only ``description`` set). The id of the alert across
    updates is the caller's choice (``incidents``, ``references``); ``alert.identifier``
    is this message's own identifier.
    """

    identifier: str
    sender: str
    sent: str
    status: str
    msg_type: str
    scope: str
    references: list[CapReference] = []
    incidents: list[str] = []
    note: str | None = None
    alert: AlertIn | None = None
    warnings: list[str] = []

    @property
    def idempotency_key(self) -> str:
        """``cap:sender,identifier,sent``: CAP's own unique name of a message."""
        return f"cap:{self.sender},{self.identifier},{self.sent}"


@dataclass
class _InfoText:
    index: int
    language: str
    fields: dict[str, str | None]


def parse_cap(
    body: bytes,
    *,
    max_vertices: int,
    accepted_event_codes: Sequence[str] = ("*",),
    default_lifetime_s: int = 0,
) -> CapMessage:
    """Parse and check a CAP 1.2 message.

    Args:
        body: the raw request body.
        max_vertices: most polygon vertices allowed over all areas (repeats counted once).
        accepted_event_codes: the deployment's SAME event policy, applied as soon as the
            event is known so a refused event is refused before its area is read.
        default_lifetime_s: an Alert or Update without ``<expires>`` (optional in CAP:
            "each recipient is free to set its own policy") ends this long after its
            ``sent``, with a warning; 0 refuses it (IPAWS requires ``expires``).

    Returns:
        The envelope, with the content mapped to one ``AlertIn`` (``None`` for a Cancel
        without ``info``). Lengths and patterns of ``AlertIn`` are checked; times,
        jurisdiction and limits other than vertices are ``ingest.validate``'s job.

    Raises:
        Malformed: not UTF-8 (``bad_utf8``), not well-formed XML (``bad_xml``), or XML
            with a DTD, entities or external references (``forbidden_xml``).
        Invalid: not CAP 1.2, or breaks a CAP rule or a rule of this hook; the reason
            names the element, and the info, area and polygon index where there is one;
            ``event_not_accepted`` for an event outside ``accepted_event_codes``.
    """
    root = load(body)
    warnings: list[str] = []
    identifier = _token(req_text(root, "identifier", "alert"), "identifier")
    sender = _token(req_text(root, "sender", "alert"), "sender")
    sent = req_text(root, "sent", "alert")
    sent_utc = _time(sent, "sent", warnings)
    status = _enum(root, "status", _STATUSES)
    msg_type = _enum(root, "msgType", _MSG_TYPES)
    if msg_type in ("Ack", "Error"):
        raise Invalid(f"msgType {msg_type} is not accepted by this hook", code="cap_msg_type")
    scope = _enum(root, "scope", _SCOPES)
    note = opt_text(root, "note", "alert")
    if note is not None and len(note) > _MAX_NOTE:
        raise Invalid(
            f"<note>: {len(note)} characters; the limit is {_MAX_NOTE}", code="cap_too_long"
        )
    references = _references(opt_text(root, "references", "alert"), warnings)
    if msg_type != "Alert" and not references:
        raise Invalid(
            f"missing <references> in alert: {_article(msg_type)} {msg_type} must name the"
            " messages it applies to",
            code="cap_missing_field",
        )
    infos = children(root, "info")
    if not infos and msg_type != "Cancel":
        raise Invalid(
            f"missing <info> in alert: {_article(msg_type)} {msg_type} carries its content in"
            " <info>",
            code="cap_missing_field",
        )
    alert = (
        _alert(
            infos,
            identifier,
            status.lower(),
            sent_utc,
            msg_type == "Cancel",
            max_vertices,
            accepted_event_codes,
            warnings,
            default_lifetime_s,
        )
        if infos
        else None
    )
    if len(warnings) > _MAX_WARNINGS:
        # Warnings go back in the response: a message of thousands of ignored parts
        # must not make it thousands of lines long.
        extra = len(warnings) - _MAX_WARNINGS
        warnings[_MAX_WARNINGS:] = [f"... and {extra} more warnings"]
    return CapMessage(
        identifier=identifier,
        sender=sender,
        sent=sent,
        status=status.lower(),
        msg_type=msg_type.lower(),
        scope=scope.lower(),
        references=references,
        incidents=(opt_text(root, "incidents", "alert") or "").split(),
        note=note,
        alert=alert,
        warnings=warnings,
    )


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _token(value: str, name: str) -> str:
    # CAP forbids spaces and commas here: references separate fields with them.
    if _SPACE_OR_COMMA.search(value):
        raise Invalid(f"<{name}> {value[:60]!r} contains a space or comma", code="cap_bad_value")
    if len(value) > _MAX_ID:
        raise Invalid(
            f"<{name}>: {len(value)} characters; the limit is {_MAX_ID}", code="cap_too_long"
        )
    return value


def _time(value: str, label: str, warnings: list[str]) -> str:
    if value[-1:] in ("Z", "z"):
        value = value[:-1] + "-00:00"
        warnings.append(f"{label}: CAP 1.2 forbids 'Z'; read as -00:00")
    parse_time(value, label)
    return value


def _enum(root: Element, name: str, allowed: tuple[str, ...]) -> str:
    value = req_text(root, name, "alert")
    if value not in allowed:
        raise Invalid(
            f"<{name}> {value[:40]!r} is not one of {', '.join(allowed)}", code="cap_bad_value"
        )
    return value


def _references(text: str | None, warnings: list[str]) -> list[CapReference]:
    out: dict[CapReference, None] = {}  # ordered and linear, however many are listed
    for triple in (text or "").split():
        parts = triple.split(",")
        if len(parts) != 3 or not all(parts):
            raise Invalid(
                f"<references> entry {triple[:120]!r} is not 'sender,identifier,sent'",
                code="cap_bad_references",
            )
        _time(parts[2], f"references {parts[1][:60]!r} sent", warnings)
        out.setdefault(CapReference(*parts))
    return list(out)


def _info_text(info: Element, i: int, warnings: list[str]) -> _InfoText:
    where = f"info {i}"
    _categories(info, where)
    for name in _INFO_REQUIRED:
        req_text(info, name, where)
    event = req_text(info, "event", where)
    event_code = info_event_code(info, where)
    expires = opt_text(info, "expires", where)
    params: dict[str, str] = {}
    for k, p in enumerate(children(info, "parameter")):
        name = req_text(p, "valueName", f"{where} parameter {k}")
        value = opt_text(p, "value", f"{where} parameter {k}")
        if value is not None:
            params.setdefault(name, value)
    web = opt_text(info, "web", where)
    if web is not None and not web.startswith(("http://", "https://")):
        warnings.append(f"{where}: <web> {web[:60]!r} is not an http(s) URL; not linked")
        web = None
    return _InfoText(
        index=i,
        language=opt_text(info, "language", where) or "en-US",
        fields={
            "event": event,
            "headline": opt_text(info, "headline", where) or event,
            "description": opt_text(info, "description", where),
            "instruction": opt_text(info, "instruction", where),
            "sender_name": opt_text(info, "senderName", where),
            "contact": opt_text(info, "contact", where),
            "web": web,
            "expires": _time(expires, f"{where} expires", warnings) if expires else None,
            "short_text": params.get("CMAMtext"),
            "long_text": params.get("CMAMlongtext"),
            "event_code": event_code,
        },
    )


def _categories(info: Element, where: str) -> None:
    found = children(info, "category")
    if not found:
        raise Invalid(f"missing <category> in {where}", code="cap_missing_field")
    for el in found:
        if not element_text(el, where):
            raise Invalid(f"empty <category> in {where}", code="cap_missing_field")


def _alert(
    infos: list[Element],
    identifier: str,
    status: str,
    sent: str,
    cancel: bool,
    max_vertices: int,
    accepted: Sequence[str],
    warnings: list[str],
    default_lifetime_s: int,
) -> AlertIn:
    texts = [_info_text(info, i, warnings) for i, info in enumerate(infos)]
    primary = next((t for t in texts if t.language.lower() == "en-us"), texts[0])
    p = primary.index
    f = primary.fields
    # Primary first, so its polygons, photos and areaDesc come first.
    order = [primary, *(t for t in texts if t is not primary)]
    origin = {
        "$.identifier": "<identifier>",
        "$.language": f"info {p} <language>",
        "$.event": f"info {p} <event>",
        "$.headline": f"info {p} <headline>",
        "$.description": f"info {p} <description>",
        "$.instruction": f"info {p} <instruction>",
        "$.sender_name": f"info {p} <senderName>",
        "$.short_text": f"info {p} parameter CMAMtext",
        "$.long_text": f"info {p} parameter CMAMlongtext",
        "$.contact": f"info {p} <contact>",
        "$.links": f"info {p} <web>",
    }
    translations: list[dict[str, object]] = []
    languages = {primary.language.lower()}
    for t in order[1:]:
        if t.language.lower() in languages:
            warnings.append(
                f"info {t.index}: language {t.language} repeats another info's; not shown"
            )
            continue
        languages.add(t.language.lower())
        k = len(translations)
        origin[f"$.translations[{k}].language"] = f"info {t.index} <language>"
        for key, name in _TRANSLATED.items():
            origin[f"$.translations[{k}].{key}"] = f"info {t.index} {name}"
        translations.append({"language": t.language, **{key: t.fields[key] for key in _TRANSLATED}})
    event_code = common_event_code(
        [(t.index, t.fields["event_code"], t.fields["event"] or "") for t in texts], cancel
    )
    if not cancel:  # a Cancel is never refused over its content
        policy.check_event(event_code, f["event"] or "", "actual", accepted)
    expires = f["expires"]
    if expires is None:
        if cancel:
            expires = sent
        elif default_lifetime_s > 0:
            end = datetime.fromisoformat(sent) + timedelta(seconds=default_lifetime_s)
            expires = end.isoformat()
            warnings.append(
                f"info {p} has no <expires>: the alert ends at {expires},"
                f" {default_lifetime_s / 3600:g} h after <sent> (AMBER_CAP_DEFAULT_LIFETIME_S);"
                " send <expires> (IPAWS requires it) or cancel it sooner"
            )
        else:
            raise Invalid(
                f"missing <expires> in info {p}: IPAWS requires it, and an alert must end",
                code="cap_missing_field",
            )
    ordered = [(t.index, infos[t.index]) for t in order]
    photos = parse_photos(ordered, origin, warnings)
    area = (
        cancel_area(infos[p], f"info {p}", warnings)
        if cancel
        else union_area(ordered, max_vertices, warnings)
    )
    origin["$.area.description"] = f"info {p} area 0 <areaDesc>"
    data: dict[str, object] = {
        "identifier": identifier,
        "status": status,
        "headline": f["headline"],
        "expires": expires,
        "area": area,
        "sent": sent,
        "language": primary.language,
        "event": f["event"],
        "event_code": event_code,
        "sender_name": f["sender_name"],
        "description": f["description"],
        "instruction": f["instruction"],
        "short_text": f["short_text"],
        "long_text": f["long_text"],
        "translations": translations,
        "photos": photos,
        "contact": {"name": f["contact"]} if f["contact"] else None,
        "links": [{"url": f["web"], "title": None}] if f["web"] else [],
    }
    try:
        return msgspec.convert(data, AlertIn)
    except msgspec.ValidationError as exc:
        detail = length_detail(str(exc), data)
        if detail is not None:
            raise Invalid(_cap_terms(detail, origin), code="cap_too_long") from None
        raise Invalid(_cap_terms(str(exc), origin), code="schema") from None


_TRANSLATED = {
    "headline": "<headline>",
    "description": "<description>",
    "instruction": "<instruction>",
    "short_text": "parameter CMAMtext",
    "long_text": "parameter CMAMlongtext",
}


def _cap_terms(message: str, origin: dict[str, str]) -> str:
    """msgspec's "... - at `$.translations[0].headline`" in the sender's terms."""
    m = _AT.match(message)
    if m is None:
        return message
    what, path = m[1], m[2]
    for prefix in sorted(origin, key=len, reverse=True):
        if path == prefix or path.startswith((prefix + ".", prefix + "[")):
            return f"{origin[prefix]}: {what}"
    return message
