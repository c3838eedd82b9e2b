"""Photos: checked by magic bytes, re-encoded without metadata, served content-addressed."""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from amber_relay.settings import Settings
from tests.conftest import running_system
from tests.support import Agency, Client, alert_doc, seconds, signed, square
from workers.photos import PhotoError, normalize, sniff

SA = (29.42, -98.49)


def jpeg_with_exif(size: tuple[int, int] = (64, 48)) -> bytes:
    img = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue() + b"TRAILING-PAYLOAD"


def png(size: tuple[int, int] = (32, 32)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (0, 90, 200)).save(out, "PNG")
    return out.getvalue()


def test_sniff_accepts_jpeg_png_webp_by_magic_bytes() -> None:
    """The type comes from the bytes, not from any declared MIME type."""
    assert sniff(jpeg_with_exif())[0] == "image/jpeg"
    assert sniff(png())[0] == "image/png"
    webp = io.BytesIO()
    Image.new("RGB", (8, 8)).save(webp, "WEBP")
    assert sniff(webp.getvalue())[0] == "image/webp"


@pytest.mark.parametrize("data", [b"GIF89a....", b"<svg xmlns=...>", b"", b"%PDF-1.7"])
def test_sniff_refuses_other_types(data: bytes) -> None:
    """GIF, SVG, PDF and empty bodies are refused with a reason."""
    with pytest.raises(PhotoError, match="magic bytes"):
        sniff(data)


def test_normalize_strips_metadata_and_trailing_bytes() -> None:
    """Re-encoding drops EXIF and anything appended after the image."""
    data, mime, width, height = normalize(jpeg_with_exif(), max_pixels=10**6)
    assert (mime, width, height) == ("image/jpeg", 64, 48)
    assert b"SecretCam" not in data
    assert b"TRAILING-PAYLOAD" not in data
    with Image.open(io.BytesIO(data)) as img:
        assert not img.getexif()


def test_normalize_refuses_too_many_pixels_and_garbage() -> None:
    """Images over the pixel cap and truncated images are refused."""
    with pytest.raises(PhotoError, match="pixel limit"):
        normalize(png((200, 200)), max_pixels=1000)
    with pytest.raises(PhotoError, match="cannot decode"):
        normalize(png()[:40], max_pixels=10**6)


@pytest.fixture
def photo_server(tmp_path: Path) -> Iterator[str]:
    """A real HTTP server on loopback serving tmp_path (the agency's web server)."""
    (tmp_path / "child.jpg").write_bytes(jpeg_with_exif())
    (tmp_path / "not-an-image.jpg").write_bytes(b"<html>hello</html>")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(seconds(10))


@pytest.mark.asyncio
async def test_alert_photos_are_fetched_once_and_served_immutable(
    settings: Settings, agency: Agency, photo_server: str
) -> None:
    """URL and inline photos reach the client as /media/<sha256> links with immutable caching;
    a URL that is not an image is left out and the alert still goes out."""
    local = settings.replace(photo_allow_private_hosts=True)
    async with running_system(local) as system:
        c = await Client.open(system.stream_url, lat=SA[0], lon=SA[1])
        doc = alert_doc(
            "TX-PHOTO",
            polygon=square(*SA, 0.1),
            photos=[
                {"url": f"{photo_server}/child.jpg", "caption": "Child"},
                {"data": base64.b64encode(png()).decode(), "caption": "Suspect"},
                {"url": f"{photo_server}/not-an-image.jpg"},
            ],
            children=[{"name": "Ana", "photos": [0]}],
        )
        r = await signed(system.http, "POST", "/v1/alerts", agency, doc)
        assert r.status_code == 202, r.text
        frame = await c.next_of("interrupt")
        photos = frame["alert"]["photos"]
        assert [p["caption"] for p in photos] == ["Child", "Suspect"]
        assert [p["mime_type"] for p in photos] == ["image/jpeg", "image/png"]
        assert photos[0]["url"] == f"/media/{photos[0]['sha256']}"  # relative to the API
        media = await system.http.get(photos[0]["url"])
        assert media.status_code == 200
        assert media.headers["content-type"] == "image/jpeg"
        assert "immutable" in media.headers["cache-control"]
        assert hashlib.sha256(media.content).hexdigest() == photos[0]["sha256"]
        assert b"SecretCam" not in media.content


@pytest.mark.asyncio
async def test_private_photo_hosts_are_refused_by_default(
    system: object, settings: Settings, agency: Agency, photo_server: str
) -> None:
    """Without photo_allow_private_hosts, a loopback photo URL is not fetched (SSRF guard)."""
    from tests.conftest import System

    assert isinstance(system, System)
    c = await Client.open(system.stream_url, lat=SA[0], lon=SA[1])
    doc = alert_doc(
        "TX-SSRF", polygon=square(*SA, 0.1), photos=[{"url": f"{photo_server}/child.jpg"}]
    )
    r = await signed(system.http, "POST", "/v1/alerts", agency, doc)
    assert r.status_code == 202
    frame = await c.next_of("interrupt")
    assert "photos" not in frame["alert"]
