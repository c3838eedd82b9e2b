"""Wire frames of the client stream: one tagged union, one reused encoder and decoder.

Client -> server: ``hello``, ``move``, ``ack``. Server -> client: ``welcome``,
``interrupt``, ``clear``. Every frame is a JSON text frame whose ``type``
field is the tag. An alert's interrupt frame is encoded once and the same bytes go
to every matching socket.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

from .model import AlertContent

__all__ = [
    "Ack",
    "Clear",
    "ClientFrame",
    "Hello",
    "Interrupt",
    "Move",
    "ServerFrame",
    "Welcome",
    "decode_client",
    "decode_server",
    "encode",
]

Lat = Annotated[float, Meta(ge=-90, le=90)]
Lon = Annotated[float, Meta(ge=-180, le=180)]
# "<agency>/<identifier>": an agency id of up to 32 characters, "/", an identifier of up to 200.
AlertId = Annotated[str, Meta(min_length=1, max_length=233)]
Version = Annotated[int, Meta(ge=1)]
Region = Annotated[str, Meta(pattern=r"^[0-9]{5}$")]
ClearReason = Literal["cancelled", "expired", "area_changed"]
AckEvent = Literal["shown", "dismissed", "call", "more"]


def _check_position(lat: float | None, lon: float | None, region: str | None) -> None:
    # msgspec turns a ValueError here into a ValidationError when decoding
    if (lat is None) != (lon is None):
        raise ValueError("lat and lon go together")
    if lat is None and region is None:
        raise ValueError("needs lat and lon, or region")


class _Frame(Struct, frozen=True, tag_field="type", forbid_unknown_fields=True):
    """Client frames: unknown fields are refused (a typo must not pass silently)."""


class _ServerFrame(Struct, frozen=True, tag_field="type"):
    """Server frames: unknown fields are ignored, so adding one never breaks old clients."""


class Hello(_Frame, frozen=True, tag="hello"):
    """First frame of a connection: where the client is and what it has shown.

    Either ``lat`` and ``lon`` or ``region`` (a 5-digit county FIPS code).
    """

    lat: Lat | None = None
    lon: Lon | None = None
    region: Region | None = None
    seen: list[tuple[AlertId, Version]] = []

    def __post_init__(self) -> None:
        _check_position(self.lat, self.lon, self.region)


class Move(_Frame, frozen=True, tag="move"):
    """The client's new position (or county); re-tags the socket."""

    lat: Lat | None = None
    lon: Lon | None = None
    region: Region | None = None

    def __post_init__(self) -> None:
        _check_position(self.lat, self.lon, self.region)


class Ack(_Frame, frozen=True, tag="ack"):
    """What the user did with an alert: it was shown, dismissed, or a button was tapped."""

    id: AlertId
    version: Version
    event: AckEvent


class Welcome(_ServerFrame, frozen=True, tag="welcome"):
    """Answer to a hello; ``active`` counts the alerts that follow as interrupts."""

    node: str
    active: int
    ping_interval_s: float


class Interrupt(_ServerFrame, frozen=True, tag="interrupt"):
    """Show this alert full-screen, unless (id, version) was shown already."""

    alert: AlertContent


class Clear(_ServerFrame, frozen=True, tag="clear"):
    """Take this alert down: it was cancelled, expired, or its area no longer covers you."""

    id: str
    reason: ClearReason


ClientFrame = Hello | Move | Ack
ServerFrame = Welcome | Interrupt | Clear

_encoder = msgspec.json.Encoder()
_client_decoder = msgspec.json.Decoder(ClientFrame)
_server_decoder = msgspec.json.Decoder(ServerFrame)


def encode(frame: ServerFrame | ClientFrame) -> bytes:
    """JSON bytes of a frame (UTF-8)."""
    return _encoder.encode(frame)


def decode_client(data: bytes | str) -> ClientFrame:
    """Parse a client frame.

    Raises:
        msgspec.ValidationError: well-formed JSON that is not a valid frame; the
            message names the path (``$.lat``).
        msgspec.DecodeError: not JSON.
    """
    frame: ClientFrame = _client_decoder.decode(data)
    return frame


def decode_server(data: bytes | str) -> ServerFrame:
    """Parse a server frame (used by the client library)."""
    frame: ServerFrame = _server_decoder.decode(data)
    return frame
