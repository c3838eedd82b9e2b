"""A loopback photo server whose first fetch of ``/slow.png`` never ends."""

from __future__ import annotations

import asyncio
import io

from PIL import Image

__all__ = ["SlowPhotos"]


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 120, 30)).save(out, "PNG")
    return out.getvalue()


class SlowPhotos:
    """A loopback HTTP server: ``/fast.png`` answers at once; ``/slow.png`` holds the
    first request open for ever (the fetch the worker is killed in), answers later ones."""

    def __init__(self) -> None:
        self.slow_requested = asyncio.Event()
        self.slow_hits = 0
        self.url = ""
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._answer(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if True:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1]
            if path == b"/slow.png":
                self.slow_hits += 1
                if self.slow_hits == 1:
                    self.slow_requested.set()
                    await reader.read()  # until the killed worker's socket closes
                    return
            body = png()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nConnection: close\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
