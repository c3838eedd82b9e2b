"""CAP 1.2 parsing: the corpus in ``tests/data/cap`` (made-up data) and variants of it."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from amber_relay import geodata, ingest
from amber_relay.agencies import Agency
from amber_relay.cap import CapMessage, CapReference, parse_cap
from amber_relay.errors import Invalid, Malformed, Rejected
from amber_relay.model import TEXT_MAX_CHARS, AlertIn, MultiPolygonGeometry, PolygonGeometry
from amber_relay.settings import Settings

CORPUS = Path(__file__).resolve().parent.parent / "data" / "cap"
MAX_VERTICES = 20_000
SENDER = "alerts@txamber.example.net"
LUBBOCK_POLYGON = "33.65,-102.00 33.65,-101.75 33.48,-101.75 33.48,-102.00 33.65,-102.00"


def _body(name: str) -> bytes:
    return (CORPUS / f"{name}.xml").read_bytes()


def _parse(name: str) -> CapMessage:
    return parse_cap(_body(name), max_vertices=MAX_VERTICES)


def _alert(name: str) -> AlertIn:
    alert = _parse(name).alert
    assert alert is not None
    return alert


def _variant(name: str, old: str, new: str) -> bytes:
    text = (CORPUS / f"{name}.xml").read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {name}.xml"
    return text.replace(old, new).encode("utf-8")


def _rejected(
    body: bytes, cls: type[Rejected], code: str, fragment: str, max_vertices: int = MAX_VERTICES
) -> Rejected:
    with pytest.raises(cls) as info:
        parse_cap(body, max_vertices=max_vertices)
    assert info.value.code == code
    assert fragment in info.value.reason
    return info.value


# Well-formed messages


def test_parse_cap_polygon_becomes_lon_lat_geojson_polygon() -> None:
    """A CAP polygon of lat,lon pairs becomes one GeoJSON Polygon ring of [lon, lat]."""
    area = _alert("polygon_only").area
    assert area.geometry == PolygonGeometry(
        [[[-102.0, 33.65], [-101.75, 33.65], [-101.75, 33.48], [-102.0, 33.48], [-102.0, 33.65]]]
    )
    assert area.circles == [] and area.same == []
    assert area.description == "Lubbock, TX"


def test_parse_cap_envelope_fields() -> None:
    """Envelope fields come through, enumerations lowercased and ``sent`` as written."""
    msg = _parse("polygon_only")
    assert (msg.identifier, msg.sender, msg.sent) == (
        "TXAMB-2031-0308-A1",
        SENDER,
        "2031-03-08T16:20:00-06:00",
    )
    assert (msg.status, msg.msg_type, msg.scope) == ("actual", "alert", "public")
    assert msg.incidents == ["TXAMB-CASE-0308"]
    assert msg.references == [] and msg.warnings == [] and msg.note is None


def test_parse_cap_primary_info_maps_to_alert_fields() -> None:
    """The info's text, sender name, contact, web link and CMAMtext land in AlertIn."""
    alert = _alert("polygon_only")
    assert alert.identifier == "TXAMB-2031-0308-A1"
    assert alert.status == "actual"
    assert alert.sent == "2031-03-08T16:20:00-06:00"
    assert alert.expires == "2031-03-09T16:20:00-06:00"
    assert alert.language == "en-US"
    assert alert.event == "Child Abduction Emergency"
    assert alert.headline.startswith("AMBER Alert: Lena Whitfield")
    assert alert.description is not None and "ZZT-0417" in alert.description
    assert alert.instruction is not None and alert.instruction.startswith("Call 911")
    assert alert.sender_name == "Texas Amber Network (test data)"
    assert alert.contact is not None and alert.contact.name == "Lubbock Police (test) 806-555-0142"
    assert [(link.url, link.title) for link in alert.links] == [
        ("https://amber.example.net/cases/0308", None)
    ]
    assert alert.short_text is not None and alert.short_text.startswith("Lubbock TX AMBER")
    assert alert.long_text is None
    assert alert.translations == []


def test_parse_cap_image_uri_becomes_photo_url() -> None:
    """An image resource with an http(s) uri becomes a PhotoIn url captioned by resourceDesc."""
    photos = _alert("polygon_only").photos
    assert [(p.url, p.data, p.caption) for p in photos] == [
        ("https://amber.example.net/cases/0308/child.jpg", None, "Photo of Lena Whitfield")
    ]


def test_parse_cap_deref_uri_becomes_inline_photo_and_other_types_are_ignored() -> None:
    """derefUri base64 becomes PhotoIn data with whitespace removed; a PDF resource is skipped."""
    photos = _alert("resources").photos
    assert len(photos) == 2
    assert photos[0].url is None and photos[0].caption == "Photo of Nora Fairbank"
    assert photos[0].data is not None and photos[0].data.startswith("iVBORw0KGgo")
    assert " " not in photos[0].data and "\n" not in photos[0].data
    assert photos[1].url == "https://amber.example.net/cases/1205/suspect.webp"


def test_parse_cap_circle_only_area() -> None:
    """A circle "lat,lon radius" becomes a Circle in km and the area has no geometry."""
    area = _alert("circle_only").area
    assert area.geometry is None
    assert [(c.lat, c.lon, c.radius_km) for c in area.circles] == [(31.5493, -97.1467, 25.0)]


def test_parse_cap_language_and_headline_defaults() -> None:
    """An info without language is en-US; one without headline uses its event."""
    alert = parse_cap(
        _variant("circle_only", "<headline>AMBER Alert: Theo Marsh, 5, near Waco</headline>", ""),
        max_vertices=MAX_VERTICES,
    ).alert
    assert alert is not None
    assert alert.language == "en-US"
    assert alert.headline == "Child Abduction Emergency"


def test_parse_cap_same_county_codes() -> None:
    """SAME geocodes become the area's same list in document order."""
    area = _alert("same_only").area
    assert area.same == ["048453", "048491"]
    assert area.geometry is None and area.circles == []


def test_parse_cap_same_whole_state_code() -> None:
    """A whole-state SAME code (0SS000) is kept as is for the geodata layer to resolve."""
    assert _alert("same_statewide").area.same == ["048000"]


def test_parse_cap_polygon_circle_and_same_in_one_area() -> None:
    """An area with a polygon, a circle and a SAME code keeps all three parts."""
    area = _alert("all_three").area
    assert isinstance(area.geometry, PolygonGeometry)
    assert [c.radius_km for c in area.circles] == [15.5]
    assert area.same == ["048439"]


def test_parse_cap_two_polygons_become_multipolygon() -> None:
    """Two polygons in one area become a MultiPolygon of two single-ring polygons."""
    geometry = _alert("two_polygons").area.geometry
    assert isinstance(geometry, MultiPolygonGeometry)
    assert len(geometry.coordinates) == 2
    assert geometry.coordinates[1][0][0] == [-99.85, 32.55]


def test_parse_cap_areas_are_unioned_and_first_area_describes() -> None:
    """Several areas merge into one AreaIn described by the first areaDesc; the UGC code
    of the SAME code's county (TXC229 = 048229) adds nothing."""
    msg = _parse("multi_area")
    assert msg.alert is not None
    area = msg.alert.area
    assert isinstance(area.geometry, PolygonGeometry)
    assert area.same == ["048229"]
    assert area.description == "Central El Paso, TX"
    assert msg.warnings == []


def _with_geocode(name: str, value: str, extra: str = "") -> bytes:
    """The polygon-only message with one more area: ``extra`` and one geocode."""
    geocode = f"<geocode><valueName>{name}</valueName><value>{value}</value></geocode>"
    area = f"<area><areaDesc>more</areaDesc>{extra}{geocode}</area>"
    return _variant("polygon_only", "<area>", area + "<area>")


@pytest.mark.parametrize(
    ("name", "value", "same"),
    [
        ("FIPS6", "048029", "048029"),
        ("UGC", "TXC029", "048029"),
        ("ugc", "vac510", "051510"),
        ("UGC", "PRC127", "072127"),
    ],
)
def test_parse_cap_fips6_and_ugc_county_codes_resolve_as_same(
    name: str, value: str, same: str
) -> None:
    """FIPS6 and UGC county geocodes (NWS) are read as the SAME code of that county."""
    alert = parse_cap(_with_geocode(name, value), max_vertices=MAX_VERTICES).alert
    assert alert is not None and alert.area.same == [same]


@pytest.mark.parametrize(
    ("name", "value", "label"),
    [("UGC", "TXZ055", "UGC"), ("UGC", "XXC001", "UGC"), ("FIPS6", "48029", "FIPS6")],
)
def test_parse_cap_ugc_zones_and_bad_county_codes_are_ignored_with_a_warning(
    name: str, value: str, label: str
) -> None:
    """UGC zone codes, unknown states and malformed FIPS6 values are warned about, not resolved."""
    body = _with_geocode(name, value, "<circle>33.5,-101.9 1</circle>")
    msg = parse_cap(body, max_vertices=MAX_VERTICES)
    assert msg.alert is not None and msg.alert.area.same == []
    assert any(f"1 {label!r} geocode(s) ignored" in w for w in msg.warnings), msg.warnings


def test_parse_cap_long_area_desc_is_kept_whole() -> None:
    """A 2,000-character areaDesc (NWS lists of zones are this long) is kept, not cut."""
    body = _variant("circle_only", "Within 25 km of downtown Waco, TX", "W" * 2000)
    alert = parse_cap(body, max_vertices=MAX_VERTICES).alert
    assert alert is not None and alert.area.description == "W" * 2000


def test_parse_cap_area_desc_over_the_limit_is_refused_naming_length() -> None:
    """An areaDesc over the text limit is refused, naming the area, its length and the limit."""
    body = _variant("circle_only", "Within 25 km of downtown Waco, TX", "W" * (TEXT_MAX_CHARS + 1))
    _rejected(
        body,
        Invalid,
        "cap_too_long",
        f"info 0 area 0 <areaDesc>: {TEXT_MAX_CHARS + 1} characters; the limit is {TEXT_MAX_CHARS}",
    )


def test_parse_cap_prefers_en_us_info_as_primary() -> None:
    """With es-US first and en-US second, en-US is primary and es-US a translation."""
    alert = _alert("bilingual")
    assert alert.language == "en-US"
    assert alert.headline.startswith("AMBER Alert: Sofia Brennan")
    assert alert.short_text is not None and "gray sedan" in alert.short_text
    assert alert.long_text is not None and alert.long_text.endswith("If seen call 911.")
    (es,) = alert.translations
    assert es.language == "es-US"
    assert es.headline.startswith("Alerta AMBER: Sofía")
    assert es.instruction == "Si la ve, llame al 911."
    assert es.short_text is not None and "sedán gris" in es.short_text
    assert es.long_text is not None and es.long_text.startswith("Alerta AMBER Corpus Christi")


def test_parse_cap_area_repeated_across_infos_is_kept_once() -> None:
    """The same polygon and SAME code in both infos appear once, and count once for vertices."""
    msg = parse_cap(_body("bilingual"), max_vertices=5)
    assert msg.alert is not None
    assert isinstance(msg.alert.area.geometry, PolygonGeometry)
    assert msg.alert.area.same == ["048355"]


def test_parse_cap_different_areas_across_infos_are_unioned() -> None:
    """An area only in the translation's info still joins the union (never under-alert)."""
    body = _variant(
        "bilingual",
        "<geocode><valueName>SAME</valueName><value>048355</value></geocode>\n    </area>\n"
        "  </info>\n  <info>",
        "<geocode><valueName>SAME</valueName><value>048409</value></geocode>\n    </area>\n"
        "  </info>\n  <info>",
    )
    alert = parse_cap(body, max_vertices=MAX_VERTICES).alert
    assert alert is not None
    assert alert.area.same == ["048355", "048409"]


def test_parse_cap_repeated_language_is_not_a_translation() -> None:
    """A second info in the primary's language is not shown, with a warning."""
    body = _variant("bilingual", "<language>es-US</language>", "<language>en-US</language>")
    msg = parse_cap(body, max_vertices=MAX_VERTICES)
    assert msg.alert is not None and msg.alert.translations == []
    assert msg.alert.headline.startswith("Alerta AMBER")  # the first en-US info wins
    assert "info 1: language en-US repeats another info's; not shown" in msg.warnings


def test_parse_cap_update_references_the_alert() -> None:
    """An Update carries its references as CapReference triples and full content."""
    msg = _parse("update")
    assert msg.msg_type == "update"
    assert msg.references == [
        CapReference(SENDER, "TXAMB-2031-0308-A1", "2031-03-08T16:20:00-06:00")
    ]
    assert msg.alert is not None and msg.alert.identifier == "TXAMB-2031-0308-A2"
    assert isinstance(msg.alert.area.geometry, PolygonGeometry)


def test_parse_cap_cancel_references_both_and_ignores_its_area() -> None:
    """A Cancel names both earlier messages; its unparsable polygon is not read."""
    msg = _parse("cancel")
    assert msg.msg_type == "cancel"
    assert [r.identifier for r in msg.references] == ["TXAMB-2031-0308-A1", "TXAMB-2031-0308-A2"]
    assert msg.note == "Child located unharmed at 11:15 PM."
    assert msg.alert is not None
    assert msg.alert.headline == "AMBER Alert cancelled: Lena Whitfield found safe"
    assert msg.alert.area.geometry is None
    assert msg.alert.area.description == "Lubbock and Hale Counties, TX"
    assert msg.alert.expires == msg.sent  # no <expires>: the Cancel's own time


def test_parse_cap_cancel_without_info_has_no_alert() -> None:
    """A Cancel without info is accepted with ``alert`` None."""
    msg = _parse("cancel_no_info")
    assert msg.msg_type == "cancel" and msg.alert is None
    assert msg.references[0].identifier == "TXAMB-2031-0411-C1"


def test_parse_cap_status_test_is_lowercased() -> None:
    """status Test becomes "test" in the envelope and the AlertIn."""
    msg = _parse("status_test")
    assert msg.status == "test"
    assert msg.alert is not None and msg.alert.status == "test"
    assert msg.note == "Monthly test; all recipients disregard."


def test_parse_cap_z_time_is_read_as_utc_with_warning() -> None:
    """A trailing "Z" is read as -00:00 in AlertIn, warned about, and kept in the envelope."""
    msg = _parse("z_time")
    assert msg.sent == "2031-11-20T03:30:00Z"
    assert msg.alert is not None
    assert msg.alert.sent == "2031-11-20T03:30:00-00:00"
    assert msg.alert.expires == "2031-11-21T03:30:00-00:00"
    assert msg.warnings == [
        "sent: CAP 1.2 forbids 'Z'; read as -00:00",
        "info 0 expires: CAP 1.2 forbids 'Z'; read as -00:00",
    ]


def test_parse_cap_space_after_comma_in_pair_is_accepted() -> None:
    """ "lat, lon" with a space after the comma reads as "lat,lon"."""
    body = _variant("polygon_only", LUBBOCK_POLYGON, LUBBOCK_POLYGON.replace(",", ", "))
    alert = parse_cap(body, max_vertices=MAX_VERTICES).alert
    assert alert is not None
    assert alert.area.geometry == _alert("polygon_only").area.geometry


@pytest.mark.parametrize("encoding", ["ISO-8859-1", "windows-1252", "UTF-16"])
def test_parse_cap_declared_encoding_is_honoured(encoding: str) -> None:
    """A body in ISO-8859-1, windows-1252 or UTF-16 (BOM) is read as its declaration says."""
    text = _variant("bilingual", 'encoding="UTF-8"', f'encoding="{encoding}"').decode()
    alert = parse_cap(text.encode(encoding), max_vertices=MAX_VERTICES).alert
    assert alert is not None and alert.translations[0].headline.startswith("Alerta AMBER: Sofía")


def test_parse_cap_windows_1252_punctuation_is_read() -> None:
    """windows-1252 curly quotes (bytes 0x93/0x94, control codes in Latin-1) come through."""
    text = _variant("polygon_only", 'encoding="UTF-8"', 'encoding="windows-1252"').decode()
    text = text.replace("Lena Whitfield, 8", "\u201cLena\u201d Whitfield, 8")
    alert = parse_cap(text.encode("cp1252"), max_vertices=MAX_VERTICES).alert
    assert alert is not None and "\u201cLena\u201d" in alert.headline


def test_parse_cap_multibyte_encoding_is_refused() -> None:
    """A declared multi-byte encoding other than UTF-8/16 is refused as bad_encoding."""
    body = _variant("polygon_only", 'encoding="UTF-8"', 'encoding="Shift_JIS"')
    _rejected(body, Malformed, "bad_encoding", "'Shift_JIS' is not supported")


def test_parse_cap_unknown_encoding_name_is_refused() -> None:
    """A declared encoding name Python does not know is bad_encoding, not a crash."""
    body = _variant("polygon_only", 'encoding="UTF-8"', 'encoding="TTF-8"')
    _rejected(body, Malformed, "bad_encoding", "'TTF-8' is not supported")


def test_cap_message_idempotency_key_is_cap_triple() -> None:
    """The idempotency key is "cap:" + sender,identifier,sent as written."""
    assert _parse("z_time").idempotency_key == (
        f"cap:{SENDER},TXAMB-2031-1120-Z1,2031-11-20T03:30:00Z"
    )


@pytest.mark.parametrize(
    "name",
    [
        "polygon_only",
        "circle_only",
        "same_only",
        "same_statewide",
        "all_three",
        "two_polygons",
        "multi_area",
        "bilingual",
        "update",
        "status_test",
        "z_time",
        "resources",
    ],
)
def test_parse_cap_corpus_alert_passes_ingest_validate(name: str) -> None:
    """Each corpus alert's AlertIn validates for a Texas agency at its sent time."""
    alert = _alert(name)
    assert alert.sent is not None
    validated = ingest.validate(
        alert,
        Agency("tx", "x" * 16, ("48",)),
        geodata.load(),
        Settings(),
        now=ingest.parse_time(alert.sent, "sent"),
    )
    assert validated.record.id == alert.identifier


# Hostile and malformed XML


@pytest.mark.parametrize("name", ["hostile_xxe", "hostile_billion_laughs", "hostile_external_dtd"])
def test_parse_cap_dtd_is_refused(name: str) -> None:
    """XXE, billion laughs and external DTDs are refused at the DOCTYPE, before expansion."""
    _rejected(_body(name), Malformed, "forbidden_xml", "document type declaration")


def test_parse_cap_undeclared_entity_is_malformed() -> None:
    """An entity reference with no DTD to declare it is malformed XML."""
    body = _variant("polygon_only", "Lubbock, TX", "&leak;")
    _rejected(body, Malformed, "bad_xml", "undefined entity")


def test_parse_cap_malformed_xml_names_line_and_column() -> None:
    """Broken XML is Malformed with the line and column of the fault."""
    _rejected(_body("hostile_malformed"), Malformed, "bad_xml", "malformed XML: line 7 column 0")


def test_parse_cap_bad_utf8_is_malformed() -> None:
    """Invalid UTF-8 is Malformed naming the byte and its offset."""
    body = _body("polygon_only").replace(b"Lubbock, TX", b"Lubb\xffck, TX")
    _rejected(body, Malformed, "bad_utf8", "byte 0xff at offset")


def test_parse_cap_cap11_namespace_is_invalid() -> None:
    """A CAP 1.1 message is Invalid naming the namespace found."""
    _rejected(
        _body("hostile_cap11"), Invalid, "cap_namespace", "'urn:oasis:names:tc:emergency:cap:1.1'"
    )


def test_parse_cap_missing_namespace_is_invalid() -> None:
    """An alert without a namespace is Invalid."""
    body = _variant("polygon_only", ' xmlns="urn:oasis:names:tc:emergency:cap:1.2"', "")
    _rejected(body, Invalid, "cap_namespace", "no namespace")


def test_parse_cap_other_root_is_invalid() -> None:
    """A document whose root is not <alert> is Invalid naming the root."""
    body = b'<feed xmlns="http://www.w3.org/2005/Atom"><title>x</title></feed>'
    _rejected(body, Invalid, "cap_not_alert", "root element is <feed>")


# Envelope rules


def test_parse_cap_missing_sent_is_invalid() -> None:
    """A message without <sent> is Invalid naming the element."""
    body = _variant("polygon_only", "<sent>2031-03-08T16:20:00-06:00</sent>", "")
    _rejected(body, Invalid, "cap_missing_field", "missing <sent> in alert")


def test_parse_cap_time_without_offset_is_invalid() -> None:
    """A time without a UTC offset is Invalid."""
    body = _variant("polygon_only", "<sent>2031-03-08T16:20:00-06:00", "<sent>2031-03-08T16:20:00")
    _rejected(body, Invalid, "bad_time", "sent: '2031-03-08T16:20:00' has no UTC offset")


def test_parse_cap_duplicate_single_element_is_invalid() -> None:
    """A single-valued element given twice is Invalid rather than silently picked."""
    body = _variant(
        "polygon_only", "<status>Actual</status>", "<status>Actual</status><status>Test</status>"
    )
    _rejected(body, Invalid, "cap_duplicate_field", "duplicate <status> in alert")


def test_parse_cap_status_must_be_spelled_as_cap() -> None:
    """status values are matched in CAP's spelling; "actual" is Invalid."""
    body = _variant("polygon_only", "<status>Actual</status>", "<status>actual</status>")
    _rejected(body, Invalid, "cap_bad_value", "<status> 'actual' is not one of Actual, Exercise")


@pytest.mark.parametrize("msg_type", ["Ack", "Error"])
def test_parse_cap_ack_and_error_are_refused(msg_type: str) -> None:
    """msgType Ack and Error are Invalid: this hook only takes Alert, Update and Cancel."""
    body = _variant("polygon_only", "<msgType>Alert</msgType>", f"<msgType>{msg_type}</msgType>")
    _rejected(body, Invalid, "cap_msg_type", f"msgType {msg_type} is not accepted by this hook")


def test_parse_cap_update_without_references_is_invalid() -> None:
    """An Update must name what it updates in <references>."""
    body = _variant("polygon_only", "<msgType>Alert</msgType>", "<msgType>Update</msgType>")
    _rejected(body, Invalid, "cap_missing_field", "missing <references> in alert: an Update")


def test_parse_cap_malformed_reference_triple_is_quoted() -> None:
    """A references entry that is not sender,identifier,sent is Invalid and quoted."""
    body = _variant(
        "update",
        f"{SENDER},TXAMB-2031-0308-A1,2031-03-08T16:20:00-06:00",
        f"{SENDER},TXAMB-2031-0308-A1",
    )
    _rejected(body, Invalid, "cap_bad_references", f"'{SENDER},TXAMB-2031-0308-A1'")


def test_parse_cap_identifier_with_space_is_invalid() -> None:
    """An identifier with a space could not be referenced, so it is Invalid."""
    body = _variant("polygon_only", "<identifier>TXAMB-2031-0308-A1", "<identifier>TXAMB 2031")
    _rejected(body, Invalid, "cap_bad_value", "<identifier> 'TXAMB 2031' contains a space")


def test_parse_cap_identifier_with_slash_fails_alert_schema() -> None:
    """An identifier AlertIn's pattern refuses is reported against <identifier>."""
    body = _variant("polygon_only", "<identifier>TXAMB-2031-0308-A1", "<identifier>TXAMB/2031")
    _rejected(body, Invalid, "schema", "<identifier>: Expected `str` matching regex")


def test_parse_cap_alert_without_info_is_invalid() -> None:
    """An Alert must carry its content in <info>."""
    body = _variant("status_test", "<info>", "<!--").replace(b"</info>", b"-->")
    _rejected(body, Invalid, "cap_missing_field", "missing <info> in alert")


def test_parse_cap_text_element_holding_elements_is_invalid() -> None:
    """Markup inside a text element is refused rather than flattened."""
    body = _variant("polygon_only", "<headline>AMBER Alert:", "<headline><b>AMBER</b> Alert:")
    _rejected(body, Invalid, "cap_bad_value", "<headline> in info 0 must hold text")


# Info rules


def test_parse_cap_missing_category_names_info() -> None:
    """A missing required info element is named with its info index."""
    body = _variant("polygon_only", "<category>Rescue</category>", "")
    _rejected(body, Invalid, "cap_missing_field", "missing <category> in info 0")


def test_parse_cap_missing_expires_is_invalid_without_a_default() -> None:
    """With no default lifetime, an Alert's primary info must carry expires (as IPAWS)."""
    body = _variant("polygon_only", "<expires>2031-03-09T16:20:00-06:00</expires>", "")
    _rejected(body, Invalid, "cap_missing_field", "missing <expires> in info 0")


def test_parse_cap_missing_expires_takes_the_default_lifetime_after_sent() -> None:
    """Without expires, the alert ends ``default_lifetime_s`` after its sent, with a warning."""
    body = _variant("polygon_only", "<expires>2031-03-09T16:20:00-06:00</expires>", "")
    msg = parse_cap(body, max_vertices=MAX_VERTICES, default_lifetime_s=6 * 3600)
    assert msg.alert is not None
    sent = datetime.fromisoformat(msg.sent)
    assert datetime.fromisoformat(msg.alert.expires) - sent == timedelta(hours=6)
    assert any("no <expires>" in w and "6 h after <sent>" in w for w in msg.warnings)


def test_parse_cap_long_headline_is_refused_in_cap_terms() -> None:
    """A headline over the text limit is Invalid, naming the info's <headline> and lengths."""
    long = "H" * (TEXT_MAX_CHARS + 1)
    body = _variant("polygon_only", "AMBER Alert: Lena Whitfield, 8, taken in Lubbock", long)
    _rejected(
        body,
        Invalid,
        "cap_too_long",
        f"info 0 <headline>: {TEXT_MAX_CHARS + 1} characters; the limit is {TEXT_MAX_CHARS}",
    )


def test_parse_cap_nws_length_description_passes() -> None:
    """A 4,991-character description (a real NWS one was this long) is accepted whole."""
    body = _variant("polygon_only", "CHILD: Lena Whitfield", "D" * 4991 + " CHILD: Lena Whitfield")
    alert = parse_cap(body, max_vertices=MAX_VERTICES).alert
    assert alert is not None and alert.description is not None
    assert alert.description.startswith("D" * 4991)


def test_parse_cap_long_translation_text_names_its_info() -> None:
    """A too-long CMAMtext in the es-US info (info 0, a translation) names that info."""
    body = _variant(
        "bilingual",
        "Alerta AMBER Corpus Christi TX: LIC/QQP-2290 (TX) sedán gris",
        "x" * 361,
    )
    _rejected(
        body, Invalid, "cap_too_long", "info 0 parameter CMAMtext: 361 characters; the limit is 360"
    )


def test_parse_cap_deref_uri_not_base64_is_invalid() -> None:
    """An image derefUri that is not base64 is Invalid naming the resource."""
    body = _variant("resources", "BAEIfXHKZgAAAABJRU5ErkJggg==", "BAEIfXHKZgAAAABJRU5ErkJggg=*")
    _rejected(body, Invalid, "cap_bad_resource", "info 0 resource 0: <derefUri> is not base64")


# Area rules


def test_parse_cap_polygon_with_three_points_is_invalid() -> None:
    """A polygon of 3 pairs is Invalid naming the area and polygon index."""
    body = _variant(
        "two_polygons",
        "32.55,-99.85 32.55,-99.60 32.35,-99.60 32.35,-99.85 32.55,-99.85",
        "32.55,-99.85 32.55,-99.60 32.55,-99.85",
    )
    _rejected(
        body,
        Invalid,
        "cap_bad_polygon",
        "info 0 area 0 polygon 1: 3 points; CAP needs at least 4 with the first repeated last",
    )


def test_parse_cap_unclosed_polygon_is_invalid() -> None:
    """A polygon whose last pair differs from its first is Invalid as not closed."""
    body = _variant("polygon_only", LUBBOCK_POLYGON, LUBBOCK_POLYGON[:-13] + "33.60,-102.00")
    _rejected(body, Invalid, "cap_bad_polygon", "area 0 polygon 0: not closed")


def test_parse_cap_out_of_range_latitude_is_invalid() -> None:
    """A latitude beyond ±90 is Invalid with code coordinate_out_of_range."""
    body = _variant("polygon_only", LUBBOCK_POLYGON, LUBBOCK_POLYGON.replace("33.48", "133.48"))
    _rejected(body, Invalid, "coordinate_out_of_range", "latitude 133.48 in '133.48,-101.75'")


def test_parse_cap_swapped_pair_hints_lat_lon_order() -> None:
    """A lon,lat pair trips the latitude range and the reason recalls CAP's order."""
    swapped = " ".join(",".join(reversed(p.split(","))) for p in LUBBOCK_POLYGON.split())
    body = _variant("polygon_only", LUBBOCK_POLYGON, swapped)
    _rejected(body, Invalid, "coordinate_out_of_range", "(CAP pairs are lat,lon)")


def test_parse_cap_out_of_range_longitude_in_circle_is_invalid() -> None:
    """A circle centre with longitude beyond ±180 is Invalid."""
    body = _variant("circle_only", "31.5493,-97.1467 25", "31.5493,-197.1467 25")
    _rejected(body, Invalid, "coordinate_out_of_range", "info 0 area 0 circle 0: longitude")


@pytest.mark.parametrize("token", ["33.48;-101.75", "nan,nan", "33.48,-101.75,0", "1e1,2"])
def test_parse_cap_bad_pair_token_is_quoted(token: str) -> None:
    """A polygon token that is not a decimal lat,lon pair is Invalid and quoted."""
    body = _variant("polygon_only", "33.48,-101.75 ", f"{token} ")
    _rejected(body, Invalid, "cap_bad_coordinate", f"polygon 0: {token!r} is not a 'lat,lon' pair")


def test_parse_cap_too_many_vertices_is_invalid() -> None:
    """Polygons above max_vertices in all are Invalid with code too_many_vertices."""
    exc = _rejected(
        _body("two_polygons"), Invalid, "too_many_vertices", "the limit is 9", max_vertices=9
    )
    assert "10 vertices" in exc.reason


def test_parse_cap_zero_radius_circle_is_invalid() -> None:
    """A circle radius must be a positive number of km."""
    body = _variant("circle_only", "31.5493,-97.1467 25", "31.5493,-97.1467 0")
    _rejected(body, Invalid, "cap_bad_circle", "radius '0' must be a number of km greater than 0")


def test_parse_cap_same_code_not_six_digits_is_invalid() -> None:
    """A SAME geocode must be 6 digits; the bad value is quoted."""
    body = _variant("same_only", "<value>048491</value>", "<value>48491</value>")
    _rejected(body, Invalid, "cap_bad_geocode", "info 0 area 0 geocode 1: SAME value '48491'")


def test_parse_cap_area_with_only_ugc_is_invalid() -> None:
    """An area with nothing this hook can target is Invalid naming it."""
    body = _variant(
        "same_statewide",
        "<valueName>SAME</valueName><value>048000</value>",
        "<valueName>UGC</valueName><value>TXZ999</value>",
    )
    _rejected(
        body, Invalid, "cap_empty_area", "info 0 area 0 has no polygon, circle or SAME geocode"
    )


def test_parse_cap_missing_area_desc_names_area() -> None:
    """areaDesc is required, and its absence is named with the area index."""
    body = _variant("multi_area", "<areaDesc>Hudspeth County, TX</areaDesc>", "")
    _rejected(body, Invalid, "cap_missing_field", "missing <areaDesc> in info 0 area 1")


def test_parse_cap_alert_without_area_is_invalid() -> None:
    """An Alert must have at least one area."""
    body = _variant("circle_only", "<area>", "<!--").replace(b"</area>", b"-->")
    _rejected(body, Invalid, "cap_missing_field", "missing <area> in info 0")


# Cost


def test_parse_cap_many_parts_parse_in_linear_time() -> None:
    """20,000 references, SAME codes and photos each parse in about a second, not minutes."""
    n = 20_000
    refs = " ".join(f"{SENDER},TXAMB-OLD-{k},2031-03-08T16:20:00-06:00" for k in range(n))
    same = "".join(
        f"<geocode><valueName>SAME</valueName><value>{k:06d}</value></geocode>" for k in range(n)
    )
    photos = "".join(
        f"<resource><resourceDesc>p{k}</resourceDesc><mimeType>image/png</mimeType>"
        f"<uri>https://amber.example.net/p/{k}.png</uri></resource>"
        for k in range(n)
    )
    body = _variant("polygon_only", "<incidents>", f"<references>{refs}</references><incidents>")
    body = body.replace(b"<area>", photos.encode() + b"<area>", 1)
    body = body.replace(b"</polygon>", b"</polygon>" + same.encode(), 1)
    started = time.perf_counter()
    msg = parse_cap(body, max_vertices=MAX_VERTICES)
    elapsed = time.perf_counter() - started
    assert msg.alert is not None
    assert (len(msg.references), len(msg.alert.area.same), len(msg.alert.photos)) == (n, n, n + 1)
    # Quadratic de-duplication would take minutes here; linear takes a fraction of a second.
    assert elapsed < 10, f"{elapsed:.1f} s"


def test_parse_cap_warnings_are_capped() -> None:
    """Thousands of ignored parts give at most 21 warning lines, the last counting the rest."""
    ugc = "".join(
        f"<area><areaDesc>a{k}</areaDesc><circle>33.5,-101.9 1</circle>"
        f"<geocode><valueName>UGC</valueName><value>TXZ{k:03d}</value></geocode></area>"
        for k in range(100)
    )
    body = _variant("polygon_only", "<area>", ugc + "<area>")
    msg = parse_cap(body, max_vertices=MAX_VERTICES)
    assert len(msg.warnings) == 21
    assert msg.warnings[-1] == "... and 80 more warnings"


# SAME event codes


def test_parse_cap_reads_the_same_event_code() -> None:
    """The SAME eventCode becomes AlertIn.event_code."""
    assert _alert("polygon_only").event_code == "CAE"
    body = _variant("polygon_only", "<value>CAE</value>", "<value>TOR</value>")
    alert = parse_cap(body, max_vertices=MAX_VERTICES).alert
    assert alert is not None and alert.event_code == "TOR"


def test_parse_cap_missing_same_event_code_is_refused_not_inferred() -> None:
    """Without a SAME eventCode nothing is inferred from <event>: 422 event_code_missing."""
    body = _variant(
        "polygon_only", "<eventCode><valueName>SAME</valueName><value>CAE</value></eventCode>", ""
    )
    _rejected(body, Invalid, "event_code_missing", "infers none from <event>")


def test_parse_cap_two_same_event_codes_in_one_info_are_refused() -> None:
    """Two SAME codes in one info break the IPAWS profile."""
    one = "<eventCode><valueName>SAME</valueName><value>CAE</value></eventCode>"
    body = _variant("polygon_only", one, one + one.replace("CAE", "CEM"))
    _rejected(body, Invalid, "cap_bad_event_code", "SAME event codes CAE, CEM")


def test_parse_cap_refuses_an_event_outside_the_policy_before_the_area() -> None:
    """A refused event is refused before its (here broken) area is read."""
    body = _variant("polygon_only", "<value>CAE</value>", "<value>TOR</value>")
    body = body.replace(b"33.65,-102.00 33.65,-101.75", b"33.65,-102.00 nonsense")
    with pytest.raises(Invalid) as info:
        parse_cap(body, max_vertices=MAX_VERTICES, accepted_event_codes=("CAE",))
    assert info.value.code == "event_not_accepted"
