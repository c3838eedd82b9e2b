"""Length refusals that name the field, its length and the limit.

msgspec says only "Expected `str` of length <= 10000 - at `$.description`"; the sender
needs to know by how much. These helpers find the value at that path again.
"""

from __future__ import annotations

import re

import msgspec

__all__ = ["json_length_reason", "length_detail"]

_TOO_LONG = re.compile(r"^Expected `str` of length <= ([0-9]+) - at `(\$[^`]*)`$")
_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[([0-9]+)\]")


def _resolve(data: object, path: str) -> object:
    node = data
    for m in _STEP.finditer(path, 1):
        if m[1] is not None:
            if not isinstance(node, dict):
                return None
            node = node.get(m[1])
        else:
            if not isinstance(node, list) or int(m[2]) >= len(node):
                return None
            node = node[int(m[2])]
    return node


def length_detail(message: str, data: object) -> str | None:
    """``"N characters; the limit is L - at `$.path`"`` for a msgspec too-long error
    about ``data``; ``None`` for any other error."""
    m = _TOO_LONG.match(message)
    if m is None:
        return None
    value = _resolve(data, m[2])
    if not isinstance(value, str):
        return None
    return f"{len(value)} characters; the limit is {m[1]} - at `{m[2]}`"


def json_length_reason(message: str, body: bytes) -> str | None:
    """``"`$.path`: N characters; the limit is L"`` for a too-long error about a JSON
    body (decoded again untyped, only on this error path); ``None`` otherwise."""
    if _TOO_LONG.match(message) is None:
        return None
    try:
        data = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return None
    detail = length_detail(message, data)
    if detail is None:
        return None
    what, _, path = detail.rpartition(" - at ")
    return f"{path}: {what}"
