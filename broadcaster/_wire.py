"""Pre-built WebSocket frames: bytes ready for ``transport.write`` (server side, unmasked).

Compression is never negotiated on the stream, so every socket gets identical bytes
and a frame is built once per alert version, not once per socket.
"""

from __future__ import annotations

from websockets.frames import Frame, Opcode

from amber_relay import frames

__all__ = ["PING", "text_frame", "frame_of"]


def text_frame(payload: bytes) -> bytes:
    """A complete unmasked WebSocket text frame carrying ``payload`` (UTF-8 JSON)."""
    return Frame(Opcode.TEXT, payload).serialize(mask=False)


def frame_of(frame: frames.ServerFrame) -> bytes:
    """The wire bytes of a server frame."""
    return text_frame(frames.encode(frame))


PING = Frame(Opcode.PING, b"").serialize(mask=False)
