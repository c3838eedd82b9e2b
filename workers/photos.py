"""Photos: fetched once by the worker, checked, stripped, stored content-addressed.

Each photo (a URL, or inline base64) is read with a size cap and a timeout, must be
JPEG, PNG or WebP by its magic bytes (the declared type is not trusted), is decoded
and re-encoded by Pillow (which drops EXIF, GPS and any trailing payload), and is
stored under the sha256 of the re-encoded bytes. Clients fetch ``/media/<sha256>``
from the API with immutable caching, so millions of phones never reach the agency's
server. A photo that fails any step is left out and the reason logged: an alert
is never held back for a photo.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import ipaddress
import logging
from urllib.parse import urlsplit

import httpx
from PIL import Image

from amber_relay.model import Photo, PhotoIn
from amber_relay.settings import Settings
from amber_relay.store import Store

__all__ = ["PhotoError", "PhotoFetcher", "sniff", "normalize"]

log = logging.getLogger("amber_relay.photos")

_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "PNG"),
)


class PhotoError(Exception):
    """A photo was refused; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def sniff(data: bytes) -> tuple[str, str]:
    """(MIME type, Pillow format) from magic bytes.

    Raises:
        PhotoError: not JPEG, PNG or WebP.
    """
    for magic, mime, fmt in _MAGIC:
        if data.startswith(magic):
            return mime, fmt
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", "WEBP"
    raise PhotoError("not a JPEG, PNG or WebP image (checked by magic bytes)")


def normalize(data: bytes, max_pixels: int) -> tuple[bytes, str, int, int]:
    """Re-encode an image without metadata: (bytes, MIME type, width, height).

    Pure (no I/O): the decoded pixels are written anew, so EXIF/GPS blocks, comments
    and anything appended after the image are gone.

    Raises:
        PhotoError: unknown type, undecodable, or more than ``max_pixels`` pixels.
    """
    mime, fmt = sniff(data)
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise PhotoError(f"{width}x{height} pixels exceeds the {max_pixels}-pixel limit")
            img.load()
            out = io.BytesIO()
            if fmt == "JPEG":
                img.convert("RGB").save(out, "JPEG", quality=85, optimize=True)
            elif fmt == "PNG":
                img.save(out, "PNG", optimize=True)
            else:
                img.save(out, "WEBP", quality=85)
    except PhotoError:
        raise
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise PhotoError(f"cannot decode the image: {exc}") from None
    return out.getvalue(), mime, width, height


async def _check_host(url: str, allow_private: bool) -> None:
    # The worker sits inside the deployment's network: refuse URLs that resolve to
    # private, loopback or link-local addresses unless explicitly allowed (SSRF).
    if allow_private:
        return
    host = urlsplit(url).hostname or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None)
    except OSError as exc:
        raise PhotoError(f"cannot resolve {host!r}: {exc}") from None
    for info in infos:
        addr = ipaddress.ip_address(info[4][0])
        if addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_reserved:
            raise PhotoError(f"{host!r} resolves to a non-public address ({addr})")


class PhotoFetcher:
    """Turns submitted photos (URL or inline) into stored :class:`Photo` references."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        # The worker does not know which API replica a client talks to: links are
        # relative to the API unless a public base URL (the load balancer) is set.
        self._base = (settings.public_base_url or "").rstrip("/")

    async def resolve(self, photos: list[PhotoIn]) -> list[Photo]:
        """Stored photos, in the submitted order, for those that passed every check.

        Photos are fetched concurrently; the whole step is bounded by
        ``photo_fetch_timeout_s``. Cancellation cancels the fetches.
        """
        results = await asyncio.gather(
            *(self._one(p, i) for i, p in enumerate(photos[: self.settings.photo_max_count]))
        )
        return [p for p in results if p is not None]

    async def _one(self, photo: PhotoIn, index: int) -> Photo | None:
        try:
            async with asyncio.timeout(self.settings.photo_fetch_timeout_s):
                raw = await self._read(photo)
            data, mime, width, height = await asyncio.to_thread(
                normalize, raw, self.settings.photo_max_pixels
            )
        except PhotoError as exc:
            log.warning("photo %d left out: %s", index, exc.reason)
            return None
        except TimeoutError:
            log.warning(
                "photo %d left out: not fetched within %g s",
                index,
                self.settings.photo_fetch_timeout_s,
            )
            return None
        except Exception:
            # A bug on one photo must not hold the alert back (nor fail its job forever).
            log.exception("photo %d left out: unexpected error", index)
            return None
        sha = hashlib.sha256(data).hexdigest()
        await self.store.put_media(sha, data, mime)
        return Photo(
            sha256=sha,
            url=f"{self._base}/media/{sha}",
            mime_type=mime,
            width=width,
            height=height,
            caption=photo.caption,
        )

    async def _read(self, photo: PhotoIn) -> bytes:
        cap = self.settings.photo_max_bytes
        if photo.data is not None:
            try:
                raw = base64.b64decode(photo.data, validate=True)
            except (binascii.Error, ValueError):
                raise PhotoError("inline data is not valid base64") from None
            if len(raw) > cap:
                raise PhotoError(f"inline photo of {len(raw)} bytes exceeds {cap} bytes")
            return raw
        if photo.url is None:
            raise PhotoError("neither url nor data")
        await _check_host(photo.url, self.settings.photo_allow_private_hosts)
        chunks: list[bytes] = []
        size = 0
        try:
            # No redirects: a redirect could lead past the address check above.
            async with (
                httpx.AsyncClient(follow_redirects=False) as client,
                client.stream("GET", photo.url) as response,
            ):
                if response.status_code != 200:
                    raise PhotoError(f"GET {photo.url} answered {response.status_code}")
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > cap:
                        raise PhotoError(f"{photo.url} is larger than {cap} bytes")
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise PhotoError(f"GET {photo.url} failed: {exc!r}") from None
        return b"".join(chunks)
