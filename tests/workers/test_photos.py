"""Photos: checked by magic bytes, re-encoded without metadata, served content-addressed."""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import io
import ssl
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import pytest_asyncio
from PIL import Image
from redis.asyncio import Redis

from amber_relay.model import PhotoIn
from amber_relay.settings import Settings
from amber_relay.store import Store
from tests.conftest import running_system
from tests.support import Agency, Client, alert_doc, seconds, signed, square
from workers.photos import PhotoError, PhotoFetcher, check_address, normalize, sniff

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


class RecordingHandler(SimpleHTTPRequestHandler):
    """Serves files and records the Host header of every request it gets."""

    hosts: list[str]

    def do_GET(self) -> None:
        self.hosts.append(self.headers.get("Host", ""))
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serving(root: Path, tls: ssl.SSLContext | None = None) -> Iterator[tuple[int, list[str]]]:
    """A real HTTP(S) server on 127.0.0.1 serving ``root``: (port, Host headers seen)."""
    hosts: list[str] = []
    handler = functools.partial(
        type("Handler", (RecordingHandler,), {"hosts": hosts}), directory=str(root)
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], hosts
    finally:
        server.shutdown()
        server.server_close()
        thread.join(seconds(10))


class Rebinding:
    """A resolver whose answer changes after the first call (a DNS rebinding name)."""

    def __init__(self, first: str, then: str) -> None:
        self.answers = [first, then]
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        return [self.answers[min(len(self.calls), 2) - 1]]


@pytest_asyncio.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    """The store on the test run's private Redis."""
    assert settings.redis_url is not None
    redis = Redis.from_url(settings.redis_url)
    try:
        yield Store(redis, settings.redis_prefix, retention_s=60, stream_maxlen=100)
    finally:
        await redis.aclose()


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.127.255.254",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "192.0.2.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:100.64.0.1",
        "2002:7f00:1::1",
        "ff02::1",
        "not-an-address",
    ],
)
def test_non_global_addresses_are_refused(address: str) -> None:
    """Loopback, private, link-local, shared (100.64.0.0/10), multicast, reserved and
    documentation addresses are refused, also embedded in IPv6 (mapped, 6to4)."""
    with pytest.raises(PhotoError):
        check_address(address)


@pytest.mark.parametrize("address", ["1.1.1.1", "8.8.8.8", "2606:4700:4700::1111"])
def test_global_addresses_are_allowed(address: str) -> None:
    """Global unicast addresses may be fetched from."""
    assert str(check_address(address)) == address


@pytest.mark.asyncio
async def test_rebinding_name_is_resolved_once_and_never_reaches_loopback(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    """A name that resolves to a global address for the check and to 127.0.0.1 after:
    resolved once, the loopback server never gets a request."""
    (tmp_path / "child.jpg").write_bytes(jpeg_with_exif())
    with serving(tmp_path) as (port, hosts):
        resolver = Rebinding(first="1.1.1.1", then="127.0.0.1")
        fetcher = PhotoFetcher(store, settings.replace(photo_fetch_timeout_s=1.0), resolve=resolver)
        got = await fetcher.resolve([PhotoIn(url=f"http://rebind.example:{port}/child.jpg")])
    assert got == []
    assert resolver.calls == ["rebind.example"]
    assert hosts == []


@pytest.mark.asyncio
async def test_fetch_goes_to_the_checked_address_with_the_name_as_host(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    """The connection goes to the address the one resolution gave (a real server on
    127.0.0.1, allowed for the test), with the URL's name in the Host header."""
    (tmp_path / "child.jpg").write_bytes(jpeg_with_exif())
    with serving(tmp_path) as (port, hosts):
        resolver = Rebinding(first="127.0.0.1", then="192.0.2.1")
        fetcher = PhotoFetcher(
            store, settings.replace(photo_allow_private_hosts=True), resolve=resolver
        )
        got = await fetcher.resolve([PhotoIn(url=f"http://photos.agency.test:{port}/child.jpg")])
    assert [p.mime_type for p in got] == ["image/jpeg"]
    assert resolver.calls == ["photos.agency.test"]
    assert hosts == [f"photos.agency.test:{port}"]


@pytest.fixture
def tls_pair(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context for photos.agency.test, client context trusting its CA), made
    by the openssl command."""
    d = tmp_path / "tls"
    d.mkdir()

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
        "-subj", "/CN=amber test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign")  # fmt: skip
    run("req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=photos.agency.test")
    (d / "ext.cnf").write_text("subjectAltName=DNS:photos.agency.test\n")
    run("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "leaf.pem", "-days", "1", "-extfile", "ext.cnf")  # fmt: skip
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(d / "leaf.pem", d / "leaf.key")
    client = ssl.create_default_context(cafile=str(d / "ca.pem"))
    return server, client


@pytest.mark.asyncio
async def test_https_fetch_sends_the_name_in_sni_and_checks_the_certificate(
    settings: Settings,
    store: Store,
    tmp_path: Path,
    tls_pair: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    """Over https the pinned connection still names the host in SNI and verifies the
    certificate against the name, not the address."""
    server_ctx, client_ctx = tls_pair
    names: list[str | None] = []

    def record_sni(sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        names.append(name)

    server_ctx.sni_callback = record_sni
    (tmp_path / "child.jpg").write_bytes(jpeg_with_exif())
    with serving(tmp_path, tls=server_ctx) as (port, hosts):
        resolver = Rebinding(first="127.0.0.1", then="192.0.2.1")
        local = settings.replace(photo_allow_private_hosts=True)
        fetcher = PhotoFetcher(store, local, resolve=resolver, verify=client_ctx)
        got = await fetcher.resolve([PhotoIn(url=f"https://photos.agency.test:{port}/child.jpg")])
    assert [p.mime_type for p in got] == ["image/jpeg"]
    assert names == ["photos.agency.test"]
    assert hosts == [f"photos.agency.test:{port}"]
