"""Property tests of the two agency-facing parsers: JSON (``ingest``) and CAP (``cap``).

Whatever bytes arrive, a parser either returns a value or raises a
:class:`~amber_relay.errors.Rejected` with a reason; any other exception would be a
500 and a bug. Inputs start from plausible alerts and the CAP corpus, then are bent:
byte flips, truncation, element deletion and duplication, random coordinates.
"""

from __future__ import annotations

import copy
import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from amber_relay import agencies, geodata, ingest
from amber_relay.cap import CapMessage, parse_cap
from amber_relay.errors import Rejected
from amber_relay.geodata import GeoData
from amber_relay.model import PolygonGeometry
from amber_relay.settings import Settings

CORPUS = Path(__file__).resolve().parent.parent / "data" / "cap"
CAP_FILES = sorted(CORPUS.glob("*.xml"))
# The hostile files carry DTDs: only defusedxml may read them, so they get byte
# mutations but are never parsed here to mutate elements.
BENIGN_CAP_FILES = [p for p in CAP_FILES if not p.name.startswith("hostile_")]
# On a loaded machine Hypothesis may re-run a slow example and print its call; a
# mutated corpus body makes that repr exceed 30 kB, which only warns (third party).
pytestmark = pytest.mark.filterwarnings(
    "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning"
)
NOW = ingest.parse_time("2031-03-08T16:00:00-06:00", "now")
AGENCY = agencies.Agency("tx", "x" * 16, ("48",))
SETTINGS = Settings()
MAX_VERTICES = 64

# 2 slow shared cores: the deadline catches a runaway example (quadratic parsing,
# entity expansion), not ordinary jitter.
FUZZ = settings(
    max_examples=200,
    deadline=timedelta(seconds=2),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def geo() -> GeoData:
    return geodata.load()


def _accepts_or_rejects(parse: Callable[[], object]) -> object | None:
    """Run a parser: its value, or ``None`` after a Rejected with a reason."""
    try:
        value = parse()
    except Rejected as exc:
        assert exc.reason.strip(), f"{type(exc).__name__} {exc.code} without a reason"
        event(f"rejected {exc.code}")
        return None
    event("accepted")
    return value


# Byte-level mutations


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    """``base`` with up to four flips, deletions, insertions, duplications or a cut."""
    body = bytearray(base)
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "delete", "insert", "duplicate", "truncate"]))
        at = draw(st.integers(0, max(len(body) - 1, 0)))
        if op == "flip" and body:
            body[at] ^= draw(st.integers(1, 255))
        elif op == "delete":
            del body[at : at + draw(st.integers(1, 64))]
        elif op == "insert":
            body[at:at] = draw(
                st.one_of(
                    st.binary(max_size=16),
                    st.sampled_from(
                        [b"<", b">", b"&", b"&amp;", b"]]>", b"<!--", b"\xff", b"\xc3", b"\x00"]
                    ),
                )
            )
        elif op == "duplicate":
            end = at + draw(st.integers(1, 256))
            body[at:at] = body[at:end]
        elif op == "truncate":
            del body[at:]
    return bytes(body)


# JSON alerts: mostly plausible, so most examples get past the schema into validate()

T = TypeVar("T")


def _mostly(good: st.SearchStrategy[T], bad: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    """``good`` about seven times in eight, else ``bad``; shrinks towards ``good``."""
    # Hypothesis favours 0 and the bounds, so the odd one out sits in the middle.
    return st.integers(0, 7).flatmap(lambda n: bad if n == 3 else good)


_lat = _mostly(st.floats(30.0, 33.3), st.floats(-90, 90) | st.sampled_from([91.0, -200.0]))
_lon = _mostly(st.floats(-100.5, -96.5), st.floats(-180, 180) | st.sampled_from([181.0, 1e308]))
_position = st.tuples(_lon, _lat).map(list)


@st.composite
def _ring(draw: st.DrawFn) -> list[list[float]]:
    ring = draw(st.lists(_position, min_size=draw(_mostly(st.just(3), st.just(0))), max_size=10))
    close = draw(_mostly(st.just(True), st.just(False)))
    if ring and close:
        ring.append(list(ring[0]))
    return ring


@st.composite
def _time(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 15)) == 0:
        return draw(st.text(max_size=30))
    offset = draw(
        _mostly(st.sampled_from(["-06:00", "-05:00", "+00:00"]), st.sampled_from(["Z", ""]))
    )
    seconds = draw(_mostly(st.integers(60, 6 * 86400), st.integers(-2 * 86400, 9 * 86400)))
    when = datetime.fromtimestamp(NOW + seconds, tz=UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S") + offset


_same = _mostly(
    st.sampled_from(["048113", "048453", "048439", "048000", "148201"]),
    st.sampled_from(["048999", "999999", "006037"]) | st.from_regex(r"[0-9]{5,7}", fullmatch=True),
)
_geometry = _mostly(
    st.one_of(
        st.builds(lambda r: {"type": "Polygon", "coordinates": [r]}, _ring()),
        st.builds(
            lambda p: {"type": "MultiPolygon", "coordinates": p},
            st.lists(st.lists(_ring(), min_size=1, max_size=2), min_size=1, max_size=3),
        ),
    ),
    st.none() | st.builds(lambda r: {"type": "Polygon", "coordinates": r}, st.lists(_ring())),
)
_circle = st.fixed_dictionaries(
    {"lat": _lat, "lon": _lon, "radius_km": _mostly(st.floats(0.1, 80), st.floats(-1, 2000))}
)
_area = st.fixed_dictionaries(
    {},
    optional={
        "geometry": _geometry,
        "circles": st.lists(_circle, max_size=3),
        "same": st.lists(_same, max_size=4),
        "description": st.text(max_size=40),
    },
)
_text = _mostly(st.text(min_size=1, max_size=80), st.text(max_size=400))
_json_alert = st.fixed_dictionaries(
    {
        "identifier": _mostly(
            st.from_regex(r"[A-Za-z0-9._:-]{1,24}", fullmatch=True), st.text(max_size=210)
        ),
        "status": _mostly(st.sampled_from(["actual", "test"]), st.sampled_from(["Actual", ""])),
        "headline": _text,
        "expires": _time(),
        "area": _area,
    },
    optional={
        "sent": _time(),
        "language": st.sampled_from(["en-US", "es-US", ""]),
        "description": _text,
        "short_text": _text,
        "translations": st.lists(
            st.fixed_dictionaries({"language": st.just("es-US"), "headline": _text}),
            max_size=2,
        ),
        "photos": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "url": _mostly(st.just("https://example.net/p.jpg"), st.text(max_size=30)),
                    "data": st.text(max_size=40),
                },
            ),
            max_size=2,
        ),
    },
).flatmap(lambda alert: _mostly(st.just(alert), st.just({**alert, "unknown_field": 1})))


def _json_body(alert: dict[str, object]) -> bytes:
    # json, not msgspec: it writes NaN and Infinity, which a hostile sender might too.
    return json.dumps(alert).encode("utf-8")


def _validate(body: bytes, geo: GeoData) -> object:
    alert = ingest.parse_json(body)
    return ingest.validate(alert, AGENCY, geo, SETTINGS, now=NOW)


@FUZZ
@given(alert=_json_alert)
def test_json_generated_alert_is_accepted_or_rejected(
    alert: dict[str, object], geo: GeoData
) -> None:
    """A generated JSON alert is validated or rejected with a reason, never crashes."""
    _accepts_or_rejects(lambda: _validate(_json_body(alert), geo))


@FUZZ
@given(data=st.data(), alert=_json_alert)
def test_json_mutated_bytes_are_accepted_or_rejected(
    data: st.DataObject, alert: dict[str, object], geo: GeoData
) -> None:
    """A generated JSON alert with bytes flipped, cut or repeated never crashes the parser."""
    body = data.draw(mutated(_json_body(alert)))
    _accepts_or_rejects(lambda: _validate(body, geo))


# CAP messages


def _check_cap(body: bytes) -> CapMessage | None:
    result = _accepts_or_rejects(lambda: parse_cap(body, max_vertices=MAX_VERTICES))
    assert result is None or isinstance(result, CapMessage)
    return result


@FUZZ
@given(data=st.data(), path=st.sampled_from(CAP_FILES))
def test_cap_mutated_bytes_are_accepted_or_rejected(data: st.DataObject, path: Path) -> None:
    """A corpus file with bytes flipped, inserted, deleted or cut never crashes parse_cap."""
    _check_cap(data.draw(mutated(path.read_bytes())))


_TEXTS = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            "Z",
            "2031-03-08T16:20:00Z",
            "2031-03-08T16:20:00",
            "Alert",
            "Cancel",
            "Update",
            "Ack",
            "SAME",
            "048453",
            "x,y,z a,b",
            "33.65,-102.00 33.65,-101.75 33.65,-102.00",
            "31.5,-97.1 0",
            "image/png",
            "%%%",
            "A" * 250,
        ]
    ),
)


@st.composite
def element_mutated(draw: st.DrawFn) -> bytes:
    """A benign corpus file with elements deleted, duplicated or given new text."""
    root = ET.parse(draw(st.sampled_from(BENIGN_CAP_FILES))).getroot()
    for _ in range(draw(st.integers(1, 4))):
        elements = list(root.iter())
        parents = {child: parent for parent in elements for child in parent}
        el = draw(st.sampled_from(elements))
        op = draw(st.sampled_from(["delete", "duplicate", "text", "child"]))
        parent = parents.get(el)
        if op == "delete" and parent is not None:
            parent.remove(el)
        elif op == "duplicate" and parent is not None:
            parent.insert(list(parent).index(el), copy.deepcopy(el))
        elif op == "text":
            el.text = draw(_TEXTS)
        elif op == "child":
            el.append(copy.deepcopy(draw(st.sampled_from(elements))))
    body = ET.tostring(root, encoding="utf-8")
    assert isinstance(body, bytes)
    return body


@FUZZ
@given(body=element_mutated())
def test_cap_mutated_elements_are_accepted_or_rejected(body: bytes, geo: GeoData) -> None:
    """Deleting, duplicating or rewriting elements gives a CapMessage or a Rejected.

    An accepted Alert or Update then goes through ``ingest.validate``, which must also
    either accept it or reject it.
    """
    msg = _check_cap(body)
    if msg is not None and msg.alert is not None and msg.msg_type != "cancel":
        alert = msg.alert
        # At the message's own time, so the corpus' expiry dates stay in range.
        now = ingest.parse_time(alert.sent or "", "sent")
        _accepts_or_rejects(lambda: ingest.validate(alert, AGENCY, geo, SETTINGS, now=now))


_POLYGON = "33.65,-102.00 33.65,-101.75 33.48,-101.75 33.48,-102.00 33.65,-102.00"
_odd_coordinate = st.floats(allow_nan=True, allow_infinity=True).map(repr)


def _decimal(low: float, high: float) -> st.SearchStrategy[str]:
    return st.builds(lambda x, d: f"{x:.{d}f}", st.floats(low, high), st.integers(0, 6))


_cap_lat = _mostly(_decimal(33.0, 34.0), _decimal(-200, 200) | _odd_coordinate)
_cap_lon = _mostly(_decimal(-102.5, -101.0), _decimal(-200, 200) | _odd_coordinate)


@st.composite
def polygon_text(draw: st.DrawFn) -> str:
    """Polygon text of random pairs, separators and stray tokens, sometimes closed."""
    pairs = draw(st.lists(st.tuples(_cap_lat, _cap_lon), max_size=80))
    close = draw(_mostly(st.just(True), st.just(False)))
    if pairs and close:
        pairs.append(pairs[0])
    comma = draw(_mostly(st.just(","), st.sampled_from([", ", " ,", ";", ""])))
    tokens = [f"{lat}{comma}{lon}" for lat, lon in pairs]
    if draw(st.integers(0, 7)) == 3:
        tokens.insert(
            draw(st.integers(0, len(tokens))), draw(st.text("0123456789.,-+eE ", max_size=12))
        )
    return draw(st.sampled_from([" ", "\n", "\t ", "  "])).join(tokens)


@FUZZ
@given(text=polygon_text())
def test_cap_random_polygon_text_is_accepted_or_rejected(text: str) -> None:
    """Any polygon text parses to a closed in-range ring of 4+ points, or is Invalid."""
    body = (CORPUS / "polygon_only.xml").read_text(encoding="utf-8").replace(_POLYGON, text)
    msg = _check_cap(body.encode("utf-8"))
    if msg is None:
        return
    assert msg.alert is not None
    geometry = msg.alert.area.geometry
    assert isinstance(geometry, PolygonGeometry)
    (ring,) = geometry.coordinates
    assert len(ring) >= 4 and ring[0] == ring[-1]
    for lon, lat in ring:
        assert math.isfinite(lat) and math.isfinite(lon)
        assert -90 <= lat <= 90 and -180 <= lon <= 180
