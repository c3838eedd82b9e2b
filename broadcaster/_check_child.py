"""The child's side of :mod:`broadcaster._validator`, and the frames both sides speak.

Run by the pool as ``python -m broadcaster._check_child FD PARENT_PID``: it dies with
the serving process, reads the settings (its first frame), caps its address space,
loads the geodata, says so (an empty frame), then answers one request at a time.
"""

from __future__ import annotations

import resource
import signal
import socket
import sys
import traceback
from typing import TypeVar

import msgspec

from amber_relay import cap, errors, ingest
from amber_relay._children import _die_with_parent
from amber_relay.agencies import Agency
from amber_relay.errors import Rejected
from amber_relay.geodata import GeoData
from amber_relay.model import AlertIn, AlertRecord
from amber_relay.settings import Settings

__all__ = ["LEN", "REJECTED", "R", "Reply", "Request", "encode", "framed"]

# -- the wire: msgpack frames, a 4-byte big-endian length first ----------------------


class ParseJson(msgspec.Struct, frozen=True, tag="json"):
    body: bytes


class ParseCap(msgspec.Struct, frozen=True, tag="cap"):
    body: bytes


class Validate(msgspec.Struct, frozen=True, tag="validate"):
    alert: AlertIn
    agency: Agency
    now: float
    alert_id: str | None


class Parsed(msgspec.Struct, frozen=True, tag="parsed"):
    alert: AlertIn


class CapParsed(msgspec.Struct, frozen=True, tag="cap_parsed"):
    message: cap.CapMessage


class Checked(msgspec.Struct, frozen=True, tag="checked"):
    record: AlertRecord
    warnings: list[str]


class Refused(msgspec.Struct, frozen=True, tag="refused"):
    kind: str
    """The class name of the Rejected raised (Invalid, Forbidden...)."""
    code: str
    reason: str


class OutOfMemory(msgspec.Struct, frozen=True, tag="memory"):
    pass


class Failed(msgspec.Struct, frozen=True, tag="failed"):
    error: str
    """An unexpected exception (a bug): the caller raises RuntimeError, a 500 as before."""


Request = ParseJson | ParseCap | Validate
Reply = Parsed | CapParsed | Checked | Refused | OutOfMemory | Failed
REJECTED: dict[str, type[Rejected]] = {
    c.__name__: c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, Rejected)
}
LEN = 4
encode = msgspec.msgpack.Encoder().encode
R = TypeVar("R", Parsed, CapParsed, Checked)


def framed(payload: bytes) -> bytes:
    return len(payload).to_bytes(LEN, "big") + payload


# -- the child's side -----------------------------------------------------------------


def _recv(sock: socket.socket) -> bytes | None:
    """One frame, or None at the end of the stream (the server closed it)."""
    head = _recv_exactly(sock, LEN)
    return None if head is None else _recv_exactly(sock, int.from_bytes(head, "big"))


def _recv_exactly(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = sock.recv_into(view[got:])
        if k == 0:
            return None
        got += k
    return bytes(buf)


def _reply(frame: bytes, dec: msgspec.msgpack.Decoder[Request], geo: GeoData, s: Settings) -> bytes:
    try:
        return framed(encode(_answer(dec.decode(frame), geo, s)))
    except MemoryError:  # decoding the request or encoding the reply
        return framed(encode(OutOfMemory()))


def _answer(request: Request, geo: GeoData, settings: Settings) -> Reply:
    try:
        if isinstance(request, ParseJson):
            return Parsed(ingest.parse_json(request.body))
        if isinstance(request, ParseCap):
            return CapParsed(
                cap.parse_cap(
                    request.body,
                    max_vertices=settings.max_vertices,
                    accepted_event_codes=settings.accepted_event_codes,
                    default_lifetime_s=settings.cap_default_lifetime_s,
                )
            )
        v = ingest.validate(
            request.alert,
            request.agency,
            geo,
            settings,
            now=request.now,
            alert_id=request.alert_id,
        )
        return Checked(v.record, v.warnings)
    except Rejected as exc:
        return Refused(type(exc).__name__, exc.code, exc.reason)
    except MemoryError:
        return OutOfMemory()
    except Exception as exc:
        if "bad_alloc" in str(exc):  # GEOS reports a failed C++ allocation as GEOSException
            return OutOfMemory()
        traceback.print_exc()
        return Failed(f"{type(exc).__name__}: {exc}"[:500])


def _child_main(fd: int, parent: int) -> None:
    """Serve requests on the socket ``fd`` until the server closes it or dies."""
    _die_with_parent(parent, signal.SIGKILL)
    sock = socket.socket(fileno=fd)
    hello = _recv(sock)
    if hello is None:
        return
    settings = msgspec.msgpack.decode(hello, type=Settings)
    limit = settings.ingest_memory_limit_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from amber_relay import geodata

    geo = geodata.load()
    geo.counties_touching(None, [])  # the county R-tree (~90 ms): not the first alert's cost
    sock.sendall(framed(b""))  # loaded
    dec = msgspec.msgpack.Decoder(Request)
    while (frame := _recv(sock)) is not None:
        sock.sendall(_reply(frame, dec, geo, settings))


if __name__ == "__main__":
    _child_main(int(sys.argv[1]), int(sys.argv[2]))
