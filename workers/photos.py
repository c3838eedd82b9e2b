"""Photos: fetched once by the worker, checked, stripped, stored content-addressed.

Each photo (a URL, or inline base64) is read with a size cap and a timeout, must be
JPEG, PNG or WebP by its magic bytes (the declared type is not trusted), is decoded
and re-encoded by Pillow (which drops EXIF, GPS and any trailing payload), and is
stored under the sha256 of the re-encoded bytes. Clients fetch ``/media/<sha256>``
from the API with immutable caching, so millions of phones never reach the agency's
server. A photo that fails any step is left out and the reason logged: an alert
is never held back for a photo.

A URL's host is resolved once; every address it resolves to must be global
(``ipaddress``'s ``is_global``: no loopback, private, link-local, shared
100.64.0.0/10, multicast or reserved address, also when embedded in IPv6), and the
connection goes to exactly a checked address, with the name in the Host header and,
for https, in SNI and the certificate check. A name that resolves differently the
second time (DNS rebinding) is never resolved a second time.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import ipaddress
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import httpx
from PIL import Image

from amber_relay.model import Photo, PhotoIn
from amber_relay.settings import Settings
from amber_relay.store import Store

__all__ = ["PhotoError", "PhotoFetcher", "Resolver", "check_address", "sniff", "normalize"]

log = logging.getLogger("amber_relay.photos")

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""(host, port) -> the addresses to connect to, as text (the system's getaddrinfo)."""

_IP = ipaddress.IPv4Address | ipaddress.IPv6Address

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


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses of ``host`` from the system's resolver (getaddrinfo, off the loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def check_address(text: str, allow_private: bool = False) -> _IP:
    """The address to connect to, if it may be fetched from.

    Raises:
        PhotoError: not an IP address; or not global (``is_global``, multicast
            refused too), also for an IPv4 address embedded in IPv6 (mapped, 6to4,
            Teredo), unless ``allow_private``.
    """
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise PhotoError(f"resolver answered {text!r}, not an IP address") from None
    if allow_private:
        return addr
    embedded: list[_IP] = [addr]
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            embedded.append(addr.ipv4_mapped)
        if addr.sixtofour is not None:
            embedded.append(addr.sixtofour)
        if addr.teredo is not None:
            embedded.extend(addr.teredo)
    for a in embedded:
        if not a.is_global or a.is_multicast:
            raise PhotoError(f"the photo host resolves to a non-public address ({addr})")
    return addr


def _target(url: str) -> tuple[str, str, int, bool]:
    """(scheme, host, port, host is an IP literal) of a photo URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise PhotoError(f"{scheme!r} URLs are not fetched; use http or https")
    host = parts.hostname or ""
    if not host:
        raise PhotoError("the photo URL has no host")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise PhotoError("the photo URL has an invalid port") from None
    try:
        ipaddress.ip_address(host)
        literal = True
    except ValueError:
        literal = False
    return scheme, host, port, literal


def _pinned(url: str, addr: _IP, port: int) -> tuple[str, str]:
    """The URL with ``addr`` in place of the name, and the Host header naming the name."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if parts.port is None else f"{shown}:{parts.port}"
    where = f"[{addr}]" if addr.version == 6 else str(addr)
    path = parts.path or "/"
    return urlunsplit((parts.scheme, f"{where}:{port}", path, parts.query, "")), host_header


class PhotoFetcher:
    """Turns submitted photos (URL or inline) into stored :class:`Photo` references."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        resolve: Resolver = system_resolver,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        """``resolve`` and ``verify`` (TLS trust) are replaceable for tests."""
        self.store = store
        self.settings = settings
        self._resolve = resolve
        self._verify = verify
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
        url = photo.url
        scheme, host, port, literal = _target(url)
        if literal:
            answers = [host]
        else:
            try:
                answers = await self._resolve(host, port)  # once: never again for this URL
            except OSError as exc:
                raise PhotoError(f"cannot resolve {host!r}: {exc}") from None
        if not answers:
            raise PhotoError(f"{host!r} resolves to no address")
        allow = self.settings.photo_allow_private_hosts
        addrs = [check_address(a, allow) for a in answers]  # every answer, before any use
        failure: Exception | None = None
        for addr in dict.fromkeys(addrs):
            try:
                return await self._get(url, addr, port, host if scheme == "https" else None)
            except httpx.ConnectError as exc:  # the next checked address, if any
                failure = exc
        raise PhotoError(f"GET {url} failed: cannot connect ({failure!r})")

    async def _get(self, url: str, addr: _IP, port: int, sni: str | None) -> bytes:
        """GET ``url`` from exactly ``addr``: the name only in Host (and SNI for https)."""
        cap = self.settings.photo_max_bytes
        pinned, host_header = _pinned(url, addr, port)
        extensions = {"sni_hostname": sni} if sni else None
        chunks: list[bytes] = []
        size = 0
        try:
            # No redirects: a redirect could lead past the address check. No proxies
            # from the environment: the connection must go to the checked address.
            async with (
                httpx.AsyncClient(
                    follow_redirects=False, trust_env=False, verify=self._verify
                ) as client,
                client.stream(
                    "GET", pinned, headers={"Host": host_header}, extensions=extensions
                ) as response,
            ):
                if response.status_code != 200:
                    raise PhotoError(f"GET {url} answered {response.status_code}")
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > cap:
                        raise PhotoError(f"{url} is larger than {cap} bytes")
                    chunks.append(chunk)
        except httpx.ConnectError:
            raise
        except httpx.HTTPError as exc:
            raise PhotoError(f"GET {url} failed: {exc!r}") from None
        return b"".join(chunks)
