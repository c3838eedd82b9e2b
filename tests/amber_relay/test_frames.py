"""Tests of amber_relay.frames: the client stream's wire frames."""

from __future__ import annotations

import json

import msgspec
import pytest

from amber_relay import frames
from amber_relay.frames import Ack, Clear, Hello, Interrupt, Move, Welcome
from amber_relay.model import AlertContent, Contact, Info, Link, Person


def test_decode_client_hello_with_lat_lon_and_seen_pairs() -> None:
    """A hello with lat/lon and seen (id, version) pairs decodes to Hello."""
    f = frames.decode_client(
        b'{"type":"hello","lat":29.4241,"lon":-98.4936,"seen":[["TX-1",2],["OK-9",1]]}'
    )
    assert f == Hello(lat=29.4241, lon=-98.4936, seen=[("TX-1", 2), ("OK-9", 1)])
    assert isinstance(f, Hello) and f.region is None


def test_decode_client_hello_with_region_and_str_input() -> None:
    """A hello may give a 5-digit county region instead of lat/lon; str input works too."""
    f = frames.decode_client('{"type":"hello","region":"48029"}')
    assert f == Hello(region="48029")
    assert isinstance(f, Hello) and f.seen == [] and f.lat is None


def test_decode_client_move_and_ack() -> None:
    """move and ack frames decode to Move and Ack."""
    assert frames.decode_client(b'{"type":"move","lat":30.0,"lon":-97.0}') == Move(
        lat=30.0, lon=-97.0
    )
    assert frames.decode_client(b'{"type":"move","region":"40109"}') == Move(region="40109")
    for event in ("shown", "dismissed", "call", "more"):
        ack = frames.decode_client(f'{{"type":"ack","id":"TX-1","version":3,"event":"{event}"}}')
        assert ack == Ack(id="TX-1", version=3, event=event)


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        (b'{"type":"subscribe","lat":1,"lon":2}', "$.type"),
        (b'{"type":"hello","lat":91,"lon":0}', "$.lat"),
        (b'{"type":"hello","lat":0,"lon":-180.5}', "$.lon"),
        (b'{"type":"hello","region":"4802"}', "$.region"),
        (b'{"type":"hello","lat":1,"lon":2,"seen":[["TX-1",0]]}', "$.seen[0][1]"),
        (b'{"type":"hello","lat":1,"lon":2,"seen":[["",1]]}', "$.seen[0][0]"),
        (b'{"type":"ack","id":"TX-1","version":1,"event":"liked"}', "$.event"),
        (b'{"type":"ack","id":"TX-1","version":"1","event":"shown"}', "$.version"),
    ],
)
def test_decode_client_invalid_frame_raises_validation_error_with_path(
    raw: bytes, path: str
) -> None:
    """An unknown type or an out-of-range/ill-typed field raises ValidationError naming $.path."""
    with pytest.raises(msgspec.ValidationError) as e:
        frames.decode_client(raw)
    assert f"`{path}`" in str(e.value)


def test_decode_client_unknown_field_raises_validation_error_naming_it() -> None:
    """An unknown field raises ValidationError naming it (at the root msgspec gives no $ path)."""
    with pytest.raises(msgspec.ValidationError, match="unknown field `colour`"):
        frames.decode_client(b'{"type":"move","lat":1,"lon":2,"colour":"red"}')
    with pytest.raises(msgspec.ValidationError, match=r"missing required field `event`"):
        frames.decode_client(b'{"type":"ack","id":"TX-1","version":1}')


def test_decode_client_refuses_server_frames_and_non_json() -> None:
    """A server frame is not a client frame; non-JSON raises DecodeError."""
    with pytest.raises(msgspec.ValidationError, match=r"`\$\.type`"):
        frames.decode_client(b'{"type":"clear","id":"TX-1","reason":"expired"}')
    with pytest.raises(msgspec.DecodeError):
        frames.decode_client(b"hello")


def test_decode_client_hello_without_a_full_position_is_refused() -> None:
    """A hello with lat but no lon is not a valid frame."""
    with pytest.raises(msgspec.ValidationError):
        frames.decode_client(b'{"type":"hello","lat":29.4}')


def _content() -> AlertContent:
    return AlertContent(
        id="TX-2025-0042",
        version=2,
        sent="2025-11-22T00:00:00+00:00",
        expires="2025-11-22T15:00:00-06:00",
        event="Child Abduction Emergency",
        sender_name="Texas DPS",
        area_description="Bexar County",
        infos=[
            Info(headline="AMBER Alert: Jane Doe, 7", description="Last seen near the park."),
            Info(language="es-US", headline="Alerta AMBER: Jane Doe, 7"),
        ],
        children=[Person(name="Jane Doe", age=7, hair="brown")],
        contact=Contact(name="SAPD", phone="+1 210 207 7273"),
        links=[Link(url="https://www.missingkids.org/", title="NCMEC")],
    )


def test_encode_interrupt_round_trips_through_decode_server() -> None:
    """encode(Interrupt(...)) is JSON with type "interrupt" and decodes back equal."""
    frame = Interrupt(alert=_content())
    raw = frames.encode(frame)
    assert isinstance(raw, bytes)
    as_json = json.loads(raw)
    assert as_json["type"] == "interrupt"
    assert as_json["alert"]["id"] == "TX-2025-0042" and as_json["alert"]["version"] == 2
    back = frames.decode_server(raw)
    assert back == frame
    assert isinstance(back, Interrupt) and back.alert.headline == "AMBER Alert: Jane Doe, 7"


def test_encode_welcome_and_clear_round_trip() -> None:
    """Welcome and Clear frames round-trip through encode/decode_server."""
    for frame in (
        Welcome(node="n1", active=2, ping_interval_s=20.0),
        Clear(id="TX-1", reason="cancelled"),
        Clear(id="TX-1", reason="area_changed"),
    ):
        assert frames.decode_server(frames.encode(frame)) == frame


def test_encode_client_frames_round_trip_through_decode_client() -> None:
    """Client frames encoded by the client library decode back equal on the server."""
    for frame in (
        Hello(lat=1.5, lon=2.5, seen=[("a", 1)]),
        Hello(region="48029"),
        Move(lat=-1.0, lon=-2.0),
        Ack(id="a", version=1, event="call"),
    ):
        assert frames.decode_client(frames.encode(frame)) == frame
