"""A fast path for the canonical WebSocket upgrade request (pure: bytes in, bytes out).

A reconnect storm is mostly handshakes; the library's general HTTP parser costs about
three times this one and keeps the parsed request alive for the socket's life.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import re
import time

__all__ = ["PATH", "fast_accept"]

PATH = "/v1/stream"

# The canonical upgrade request (GET PATH, HTTP/1.1, Upgrade websocket,
# Connection upgrade, a 16-byte key, version 13) is answered here and the library's
# protocol starts OPEN; anything else (another path, a query, odd or duplicate
# headers, a body) goes through the library's own parser and checks, unchanged.
_REQUEST_LINE = f"GET {PATH} HTTP/1.1"
_FAST_MAX_BYTES = 8192
_HEADER_LINE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e]*")
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_date: tuple[int, str] = (0, "")


def _http_date() -> str:
    # The Date header changes once a second; formatting it per handshake is not free.
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, email.utils.formatdate(now, usegmt=True))
    return _date[1]


def fast_accept(data: bytes) -> tuple[bytes, int] | None:
    """The 101 response and the request's length, for a canonical upgrade request.

    None means "not sure": the caller hands the bytes to the library instead.
    """
    end = data.find(b"\r\n\r\n", 0, _FAST_MAX_BYTES)
    if end < 0:
        return None
    try:
        lines = data[:end].decode("ascii").split("\r\n")
    except UnicodeDecodeError:
        return None
    if lines[0] != _REQUEST_LINE:
        return None
    key = version = None
    upgrade = connection = False
    for line in lines[1:]:
        if not _HEADER_LINE.fullmatch(line):
            return None
        name, _, value = line.partition(":")
        name, value = name.lower(), value.strip()
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
            connection = connection or any(t.strip().lower() == "upgrade" for t in value.split(","))
        elif name in ("content-length", "transfer-encoding"):
            return None
    if not (upgrade and connection and version == "13" and key):
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
