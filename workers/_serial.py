"""arq's job serializer: msgpack via msgspec, never pickle.

Job arguments are plain strings and numbers, so msgpack round-trips them exactly,
and a job written by one process cannot execute code in another.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["deserialize", "serialize"]

_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder()


def serialize(obj: dict[str, Any]) -> bytes:
    return _enc.encode(obj)


def deserialize(data: bytes) -> dict[str, Any]:
    result: dict[str, Any] = _dec.decode(data)
    return result
