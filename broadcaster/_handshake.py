"""A fast path for the canonical WebSocket upgrade request (pure: bytes in, bytes out).

A reconnect storm is mostly handshakes; the library's general HTTP parser costs about
three times this one and keeps the parsed request alive for the socket's life.

The fast path answers a strict subset of what the library accepts, with the same
``Sec-WebSocket-Accept`` (tests/broadcaster/test_handshake.py checks it against the
library on generated requests): whenever a request is not plainly canonical it
answers None and the library's parser and checks decide. It only runs when the
library's protocol carries no policy of its own (:func:`fast_path_allowed`).
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import re
import time

import msgspec
from websockets import http11
from websockets.server import ServerProtocol

__all__ = ["PATH", "as_problem", "fast_accept", "fast_path_allowed", "too_many_connections"]

PATH = "/v1/stream"

# The canonical upgrade request (GET PATH, HTTP/1.1, one Host, Upgrade websocket,
# a simple Connection list with upgrade, a 16-byte key, version 13, at most one
# Origin, no subprotocol) is answered here and the library's protocol starts OPEN;
# anything else (another path, a query, odd or duplicate headers, a body) goes
# through the library's own parser and checks, unchanged.
_REQUEST_LINE = f"GET {PATH} HTTP/1.1"
_FAST_MAX_BYTES = 8192
_HEADER_LINE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e]*")
# "Upgrade", "keep-alive, Upgrade": letters and dashes, comma-separated. Anything
# else (empty items, quotes, odd spacing) is the library's to judge.
_SIMPLE_TOKENS = re.compile(r"[A-Za-z-]+(?:, ?[A-Za-z-]+)*")
# ServerProtocol methods that decide a handshake: overriding any disables the fast path.
_POLICY_METHODS = (
    "accept",
    "process_request",
    "process_origin",
    "process_extensions",
    "process_subprotocol",
    "select_subprotocol",
)
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_date: tuple[int, str] = (0, "")


def _http_date() -> str:
    # The Date header changes once a second; formatting it per handshake is not free.
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, email.utils.formatdate(now, usegmt=True))
    return _date[1]


def fast_path_allowed(protocol: ServerProtocol) -> bool:
    """Whether :func:`fast_accept` may stand in for ``protocol``'s handshake.

    Only for a plain :class:`ServerProtocol` without policy: no origins, extensions
    or subprotocols configured and no handshake method overridden (on the class or
    the instance). Any policy added to the library's protocol thus disables the
    fast path instead of being silently skipped.
    """
    if protocol.origins is not None or protocol.available_extensions:
        return False
    if protocol.available_subprotocols is not None:
        return False
    cls = type(protocol)
    return not any(
        name in vars(protocol) or getattr(cls, name) is not getattr(ServerProtocol, name)
        for name in _POLICY_METHODS
    )


def fast_accept(data: bytes) -> tuple[bytes, int] | None:
    """The 101 response and the request's length, for a canonical upgrade request.

    None means "not sure": the caller hands the bytes to the library instead.
    """
    end = data.find(b"\r\n\r\n", 0, min(_FAST_MAX_BYTES, http11.MAX_LINE_LENGTH))
    if end < 0:
        return None
    try:
        lines = data[:end].decode("ascii").split("\r\n")
    except UnicodeDecodeError:
        return None
    if lines[0] != _REQUEST_LINE or len(lines) > http11.MAX_NUM_HEADERS:
        return None
    key = version = None
    upgrade = connection = host = origin = False
    for line in lines[1:]:
        if not _HEADER_LINE.fullmatch(line):
            return None
        name, _, value = line.partition(":")
        name, value = name.lower(), value.strip(" \t")
        if name == "sec-websocket-key":
            if key is not None:
                return None
            key = value
        elif name == "sec-websocket-version":
            if version is not None:
                return None
            version = value
        elif name == "upgrade":
            if upgrade or value.lower() != "websocket":
                return None
            upgrade = True
        elif name == "connection":
            if connection or not _SIMPLE_TOKENS.fullmatch(value):
                return None
            if "upgrade" not in value.lower().replace(" ", "").split(","):
                return None
            connection = True
        elif name == "host":
            if host or not value:
                return None
            host = True
        elif name == "origin":
            # RFC 6454 7.3: one Origin at most; the library refuses two (400).
            if origin:
                return None
            origin = True
        elif name in ("content-length", "transfer-encoding", "sec-websocket-protocol"):
            return None
    if not (upgrade and connection and host and version == "13" and key):
        return None
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            return None
    except binascii.Error:
        return None
    accept = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()
    response = (
        f"HTTP/1.1 101 Switching Protocols\r\nDate: {_http_date()}\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    )
    return response.encode(), end + 4


def too_many_connections(limit: int) -> bytes:
    """The whole HTTP 429 answer (problem+json) for a source address over its cap."""
    body = msgspec.json.encode(
        {
            "type": "https://amber-relay.dev/problems/too_many_connections",
            "title": "Too Many Requests",
            "status": 429,
            "detail": f"at most {limit} stream connections per source address",
            "code": "too_many_connections",
        }
    )
    head = (
        "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/problem+json\r\n"
        f"Content-Length: {len(body)}\r\nRetry-After: 10\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


_REFUSAL_CODES = {400: "bad_upgrade", 403: "forbidden", 404: "not_found", 426: "upgrade_required"}


def as_problem(response: http11.Response) -> http11.Response:
    """A refused handshake's answer as problem+json (the library writes text/plain).

    The library's text becomes ``detail``; a 101 comes back unchanged.
    """
    if response.status_code == 101:
        return response
    detail = (response.body or b"").decode("utf-8", "replace").strip()
    body = msgspec.json.encode(
        {
            "type": f"https://amber-relay.dev/problems/"
            f"{_REFUSAL_CODES.get(response.status_code, 'bad_upgrade')}",
            "title": response.reason_phrase,
            "status": response.status_code,
            "detail": detail,
            "code": _REFUSAL_CODES.get(response.status_code, "bad_upgrade"),
        }
    )
    headers = response.headers.copy()
    # Headers is a multidict: setting appends, so drop the text/plain ones first.
    del headers["Content-Type"]
    del headers["Content-Length"]
    headers["Content-Type"] = "application/problem+json"
    headers["Content-Length"] = str(len(body))
    return http11.Response(response.status_code, response.reason_phrase, headers, body)
