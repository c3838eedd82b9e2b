"""The demo page (clients/web) in a real headless Chromium against the running system."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from PIL import Image, ImageDraw
from playwright.async_api import (
    Browser,
    Page,
    Route,
    ViewportSize,
    WebSocketRoute,
    async_playwright,
    expect,
)

from tests.conftest import System
from tests.support import Agency, alert_doc, seconds, signed, square

pytestmark = [pytest.mark.asyncio, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE: ViewportSize = {"width": 375, "height": 812}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
LAT, LON = 29.42, -98.49  # San Antonio, Bexar County (48029)
SEEN_KEY = "amber-relay:seen"


def ms(s: float) -> float:
    """A playwright timeout in milliseconds, scaled like every other wait bound."""
    return seconds(s) * 1000


def require_chromium() -> None:
    """Skip without Debian's Chromium, except under CI, where its absence is a failure."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: run tools/install_browser.sh (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium driven by playwright (its own browser download is not used)."""
    require_chromium()
    async with async_playwright() as pw:
        b = await pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=ms(30)
        )
        try:
            yield b
        finally:
            await b.close()


@dataclass
class Tab:
    """An open page and the script errors it raised."""

    page: Page
    errors: list[str] = field(default_factory=list)

    def check_no_errors(self) -> None:
        assert not self.errors, self.errors


async def open_tab(browser: Browser, url: str, **context: Any) -> Tab:
    """A fresh browser context (own localStorage) at phone size, showing ``url``."""
    ctx = await browser.new_context(**{"viewport": PHONE, "locale": "en-US", **context})
    ctx.set_default_timeout(ms(10))
    page = await ctx.new_page()
    tab = Tab(page)
    page.on("pageerror", lambda exc: tab.errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: tab.errors.append(f"console: {msg.text}") if msg.type == "error" else None,
    )
    await page.goto(url, timeout=ms(15))
    return tab


async def connected(page: Page) -> None:
    """Wait until the page got the stream's welcome."""
    await expect(page.locator("#status")).to_have_attribute(
        "data-state", "connected", timeout=ms(15)
    )


def page_url(system: System, query: str = f"lat={LAT}&lon={LON}") -> str:
    return f"{system.endpoints.api_url}/?{query}"


def portrait() -> bytes:
    """A small PNG stand-in for a child's photo: a head and shoulders on a plain ground."""
    img = Image.new("RGB", (240, 300), (96, 125, 139))
    draw = ImageDraw.Draw(img)
    draw.ellipse((75, 50, 165, 150), fill=(224, 172, 105))
    draw.rounded_rectangle((40, 165, 200, 320), radius=50, fill=(233, 30, 99))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def full_alert(identifier: str, headline: str = "AMBER Alert: Sofia Example, 7") -> dict[str, Any]:
    """An alert with every part the interrupt screen shows, covering San Antonio."""
    return alert_doc(
        identifier,
        polygon=square(LAT, LON, 0.2),
        headline=headline,
        sender_name="Texas Department of Public Safety",
        description="Sofia was taken from a park on the north side of San Antonio.",
        instruction="If you see the child or the vehicle, call 911 immediately.",
        children=[
            {
                "name": "Sofia Example",
                "age": 7,
                "sex": "female",
                "height": "3 ft 11 in",
                "weight": "50 lb",
                "hair": "brown",
                "eyes": "brown",
                "clothing": "pink shirt, blue jeans, white sneakers",
                "photos": [0],
            }
        ],
        photos=[{"data": base64.b64encode(portrait()).decode(), "caption": "Sofia, 2026"}],
        suspects=[{"name": "John Doe", "age": 35, "sex": "male", "hair": "black"}],
        vehicles=[
            {
                "year": 2015,
                "make": "Toyota",
                "model": "Camry",
                "color": "silver",
                "plate": "ABC1234",
                "plate_state": "TX",
            }
        ],
        last_seen={
            "place": "Brackenridge Park, San Antonio",
            "time": "2026-11-22T09:30:00-06:00",
            "direction": "northbound on I-35",
        },
        contact={"name": "Texas DPS", "phone": "1-800-346-3243"},
        links=[
            {
                "url": "https://www.missingkids.org/poster/NCMC/2000001",
                "title": "NCMEC poster",
            }
        ],
    )


async def post(system: System, agency: Agency, doc: dict[str, Any]) -> dict[str, Any]:
    r = await signed(system.http, "POST", "/v1/alerts", agency, doc)
    assert r.status_code == 202, r.text
    body: dict[str, Any] = r.json()
    return body


async def seen_in_storage(page: Page) -> list[list[Any]]:
    raw = await page.evaluate(f"() => localStorage.getItem({json.dumps(SEEN_KEY)})")
    assert isinstance(raw, str), raw
    seen: list[list[Any]] = json.loads(raw)
    return seen


async def test_page_shows_interrupt_with_details_and_buttons(
    browser: Browser, system: System, agency: Agency, tmp_path: Path
) -> None:
    """An alert covering the page's location takes the whole screen with its details."""
    tab = await open_tab(browser, page_url(system))
    page = tab.page
    await connected(page)
    await post(system, agency, full_alert("TX-PAGE-1"))

    overlay = page.get_by_role("alertdialog")
    await expect(overlay).to_be_visible(timeout=ms(10))
    await expect(overlay).to_be_focused()
    await expect(overlay).to_have_css("background-color", "rgb(0, 0, 0)")
    await expect(overlay.locator(".banner")).to_have_text(re.compile("AMBER ALERT"))
    await expect(overlay.locator("#alert-headline")).to_have_text("AMBER Alert: Sofia Example, 7")
    await expect(overlay.locator(".person.child .name")).to_have_text("Sofia Example")
    await expect(overlay.locator(".person.child")).to_contain_text("7 years old")
    await expect(overlay.locator(".person.child")).to_contain_text("pink shirt, blue jeans")
    photo = overlay.locator(".person.child img")
    await expect(photo).to_have_attribute("alt", "Sofia, 2026")
    await expect(photo).to_have_attribute("src", re.compile(r"/media/[0-9a-f]{64}$"))
    await expect(photo).to_have_js_property("naturalWidth", 240)  # served by the API
    await expect(overlay.locator(".person.suspect .name")).to_have_text("John Doe")
    await expect(overlay.locator(".vehicle .name")).to_have_text("2015 silver Toyota Camry")
    await expect(overlay.locator(".plate-number")).to_have_text("ABC1234")
    await expect(overlay.locator(".plate-state")).to_contain_text("TX")
    await expect(overlay.locator("#alert-last-seen")).to_contain_text("Brackenridge Park")
    await expect(overlay.locator("#alert-last-seen")).to_contain_text("northbound on I-35")
    await expect(overlay.locator("#alert-instruction")).to_contain_text("call 911 immediately")
    await expect(overlay.locator("#alert-sender")).to_contain_text("1-800-346-3243")

    call = overlay.get_by_role("link", name="Call 911")
    await expect(call).to_have_attribute("href", "tel:911")
    more = overlay.get_by_role("link", name="More on NCMEC")
    await expect(more).to_have_attribute("href", "https://www.missingkids.org/poster/NCMC/2000001")
    await expect(overlay.get_by_role("button", name="Dismiss")).to_be_visible()

    box = await overlay.bounding_box()
    assert box == {"x": 0, "y": 0, **PHONE}, box
    await page.screenshot(path=tmp_path / "interrupt-phone.png", animations="disabled")
    await overlay.locator("#alert-sender").scroll_into_view_if_needed()
    await page.screenshot(path=tmp_path / "interrupt-phone-end.png", animations="disabled")
    await page.set_viewport_size(DESKTOP)
    box = await overlay.bounding_box()
    assert box == {"x": 0, "y": 0, **DESKTOP}, box
    await page.screenshot(path=tmp_path / "interrupt-desktop.png", animations="disabled")
    assert await seen_in_storage(page) == [["txdps/TX-PAGE-1", 1]]
    tab.check_no_errors()


async def test_page_reload_does_not_show_a_seen_alert_again(
    browser: Browser, system: System, agency: Agency
) -> None:
    """After a reload the shown version stays down; a newer version of it is shown."""
    tab = await open_tab(browser, page_url(system))
    page = tab.page
    await post(system, agency, full_alert("TX-PAGE-2"))
    overlay = page.get_by_role("alertdialog")
    await expect(overlay).to_be_visible(timeout=ms(10))

    await page.reload(timeout=ms(15))
    await connected(page)
    # The welcome counts the interrupts that follow it: none, as the hello said "seen".
    await expect(page.locator("#status")).to_have_attribute("data-active", "0")
    await expect(overlay).to_be_hidden()

    answer = await post(system, agency, full_alert("TX-PAGE-2", headline="AMBER Alert: UPDATED"))
    assert answer["version"] == 2, answer
    await expect(overlay).to_be_visible(timeout=ms(10))
    await expect(overlay.locator("#alert-headline")).to_have_text("AMBER Alert: UPDATED")
    assert await seen_in_storage(page) == [["txdps/TX-PAGE-2", 2]]
    tab.check_no_errors()


async def test_page_dismiss_sends_dismissed_ack(
    browser: Browser, system: System, agency: Agency
) -> None:
    """Dismiss hides the overlay and the alert's status counts one shown and one dismissed."""
    tab = await open_tab(browser, page_url(system))
    page = tab.page
    await post(system, agency, full_alert("TX-PAGE-3"))
    overlay = page.get_by_role("alertdialog")
    await expect(overlay).to_be_visible(timeout=ms(10))
    await overlay.get_by_role("button", name="Dismiss").click()
    await expect(overlay).to_be_hidden()

    totals: dict[str, int] = {}
    async with asyncio.timeout(seconds(10)):
        while totals.get("dismissed", 0) < 1:
            totals = (await system.status(agency, "TX-PAGE-3"))["totals"]
            await asyncio.sleep(0.05)  # the stats flush runs every 50 ms in tests
    assert totals["shown"] == 1, totals
    assert totals["dismissed"] == 1, totals
    tab.check_no_errors()


async def test_page_cancel_removes_overlay(
    browser: Browser, system: System, agency: Agency
) -> None:
    """A cancel takes the overlay down and leaves a neutral notice."""
    tab = await open_tab(browser, page_url(system))
    page = tab.page
    await post(system, agency, full_alert("TX-PAGE-4"))
    overlay = page.get_by_role("alertdialog")
    await expect(overlay).to_be_visible(timeout=ms(10))

    r = await signed(system.http, "DELETE", "/v1/alerts/TX-PAGE-4", agency)
    assert r.status_code == 202, r.text
    await expect(overlay).to_be_hidden(timeout=ms(10))
    await expect(page.locator("#notice")).to_have_text("Alert cancelled")
    tab.check_no_errors()


async def test_page_renders_alert_markup_as_text(
    browser: Browser, system: System, agency: Agency
) -> None:
    """Markup in an agency's text is shown as text: no element is injected."""
    payload = "<img src=x onerror=\"document.title='pwned'\">"
    tab = await open_tab(browser, page_url(system))
    page = tab.page
    doc = full_alert("TX-PAGE-5", headline=f"AMBER Alert {payload}")
    doc["description"] = f"<b>bold</b> {payload}"
    doc["children"] = [{"name": payload, "clothing": "<script>document.title='pwned'</script>"}]
    del doc["photos"]  # so that any <img> on the page was injected
    await post(system, agency, doc)
    overlay = page.get_by_role("alertdialog")
    await expect(overlay).to_be_visible(timeout=ms(10))

    await expect(overlay.locator("#alert-headline")).to_have_text(f"AMBER Alert {payload}")
    await expect(overlay.locator("#alert-description")).to_have_text(f"<b>bold</b> {payload}")
    await expect(overlay.locator(".person.child .name")).to_have_text(payload)
    await expect(page.locator("img")).to_have_count(0)
    await expect(overlay.locator("#alert-content b, #alert-content script")).to_have_count(0)
    await expect(overlay.locator(".person.child")).to_contain_text("<script>")
    assert await page.title() != "pwned"
    tab.check_no_errors()


async def test_page_queues_alerts_and_shows_the_next_on_dismiss(
    browser: Browser, system: System, agency: Agency
) -> None:
    """Two active alerts: one on screen, the other queued and shown once it is dismissed."""
    tab = await open_tab(browser, page_url(system))
    page = tab.page
    await post(system, agency, full_alert("TX-PAGE-6A", headline="AMBER Alert: first"))
    await post(system, agency, full_alert("TX-PAGE-6B", headline="AMBER Alert: second"))
    overlay = page.get_by_role("alertdialog")
    headline = overlay.locator("#alert-headline")
    await expect(overlay.locator("#alert-queue")).to_have_text("1 more alert", timeout=ms(10))
    first = await headline.text_content()
    assert first in ("AMBER Alert: first", "AMBER Alert: second"), first

    await overlay.get_by_role("button", name="Dismiss").click()
    other = "AMBER Alert: second" if first == "AMBER Alert: first" else "AMBER Alert: first"
    await expect(headline).to_have_text(other)
    await expect(overlay.locator("#alert-queue")).to_have_text("")
    await overlay.get_by_role("button", name="Dismiss").click()
    await expect(overlay).to_be_hidden()
    assert sorted(map(tuple, await seen_in_storage(page))) == [
        ("txdps/TX-PAGE-6A", 1),
        ("txdps/TX-PAGE-6B", 1),
    ]
    tab.check_no_errors()


async def test_page_picks_the_browser_language(
    browser: Browser, system: System, agency: Agency
) -> None:
    """A Spanish-speaking browser gets the alert's Spanish text, by primary language subtag."""
    tab = await open_tab(browser, page_url(system, "region=48029"), locale="es-MX")
    page = tab.page
    doc = alert_doc("TX-PAGE-7", same=["048029"], headline="AMBER Alert: English")
    doc["translations"] = [
        {"language": "es-US", "headline": "Alerta AMBER: Español", "description": "Niña de 7 años"}
    ]
    await post(system, agency, doc)
    overlay = page.get_by_role("alertdialog")
    await expect(overlay.locator("#alert-headline")).to_have_text("Alerta AMBER: Español")
    await expect(overlay.locator("#alert-description")).to_have_text("Niña de 7 años")
    await expect(overlay.locator("#alert-content")).to_have_attribute("lang", "es-US")
    more = overlay.get_by_role("link", name="More on NCMEC")
    await expect(more).to_have_attribute("href", "https://www.missingkids.org/")
    tab.check_no_errors()


async def test_page_uses_geolocation_without_query(
    browser: Browser, system: System, agency: Agency
) -> None:
    """With no lat/lon in the URL the page asks the browser where it is."""
    tab = await open_tab(
        browser,
        page_url(system, ""),
        geolocation={"latitude": LAT, "longitude": LON},
        permissions=["geolocation"],
    )
    page = tab.page
    await connected(page)
    await expect(page.locator("#where-label")).to_contain_text("29.4200, -98.4900")
    await post(system, agency, full_alert("TX-PAGE-8"))
    await expect(page.get_by_role("alertdialog")).to_be_visible(timeout=ms(10))
    tab.check_no_errors()


async def test_page_reconnects_after_the_stream_was_unreachable(
    browser: Browser, system: System
) -> None:
    """A stream that cannot be reached shows a countdown, and the page connects once it can."""
    ctx = await browser.new_context(viewport=PHONE)
    dead = json.dumps({"stream_url": "ws://127.0.0.1:9/v1/stream"})

    async def unreachable(route: Route) -> None:
        await route.fulfill(status=200, content_type="application/json", body=dead)

    await ctx.route("**/v1/config", unreachable)
    page = await ctx.new_page()
    await page.goto(page_url(system), timeout=ms(15))
    status = page.locator("#status")
    await expect(status).to_have_attribute("data-state", "reconnecting", timeout=ms(10))
    await expect(status).to_have_text(re.compile(r"^Reconnecting in \d+ s"))

    await ctx.unroute("**/v1/config", unreachable)
    await expect(status).to_have_attribute("data-state", "connected", timeout=ms(20))


async def test_page_connects_with_a_full_seen_list(browser: Browser, system: System) -> None:
    """256 remembered alerts with 200-character ids still fit in a hello the server accepts."""
    seen = [[f"{i:03d}" + "x" * 197, 1] for i in range(256)]
    ctx = await browser.new_context(viewport=PHONE)
    await ctx.add_init_script(
        f"localStorage.setItem({json.dumps(SEEN_KEY)}, {json.dumps(json.dumps(seen))})"
    )
    page = await ctx.new_page()
    await page.goto(page_url(system), timeout=ms(15))
    await connected(page)
    assert len(await seen_in_storage(page)) == 256


def png(width: int, height: int, color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, format="PNG")
    return buf.getvalue()


async def test_page_shows_photos_by_index_and_dedupes_repeats(
    browser: Browser, system: System, tmp_path: Path
) -> None:
    """Hello carries place and seen; photos go where people point; a repeat is not reshown.

    The test plays the stream (the real server never repeats an (id, version) on one
    socket); the page and its photos come from the API's origin.
    """
    photos = {"child": png(120, 160, (200, 160, 40)), "scene": png(160, 90, (60, 90, 160))}
    media = {hashlib.sha256(data).hexdigest(): data for data in photos.values()}
    child_sha, scene_sha = media
    api = system.endpoints.api_url

    def photo(sha: str, caption: str) -> dict[str, Any]:
        w, h = Image.open(io.BytesIO(media[sha])).size
        return {"sha256": sha, "url": f"{api}/media/{sha}", "mime_type": "image/png",
                "width": w, "height": h, "caption": caption}  # fmt: skip

    def interrupt(alert_id: str, headline: str) -> str:
        alert = {
            "id": alert_id,
            "version": 1,
            "sent": "2026-11-22T09:45:00-06:00",
            "expires": "2026-11-22T15:00:00-06:00",
            "event": "Child Abduction Emergency",
            "infos": [{"language": "en-US", "headline": headline}],
            "children": [{"name": "Sofia Example", "age": 7, "photos": [0]}],
            "photos": [photo(child_sha, "Sofia, photo from 2026"), photo(scene_sha, "Park")],
        }
        return json.dumps({"type": "interrupt", "alert": alert})

    hellos: list[dict[str, Any]] = []

    def stream(ws: WebSocketRoute) -> None:
        def on_message(message: str | bytes) -> None:
            frame = json.loads(message)
            if frame["type"] == "hello":
                hellos.append(frame)
                ws.send(json.dumps({"type": "welcome", "node": "test", "active": 1,
                                    "ping_interval_s": 20}))  # fmt: skip
                ws.send(interrupt("MOCK-1", "AMBER Alert: with photos"))
            elif frame["type"] == "ack" and frame["event"] == "dismissed":
                ws.send(interrupt("MOCK-1", "AMBER Alert: with photos"))  # a repeat
                ws.send(interrupt("MOCK-2", "AMBER Alert: sentinel"))

        ws.on_message(on_message)

    async def serve_media(route: Route) -> None:
        sha = route.request.url.rsplit("/", 1)[-1]
        await route.fulfill(status=200, content_type="image/png", body=media[sha])

    ctx = await browser.new_context(viewport=PHONE, locale="en-US")
    ctx.set_default_timeout(ms(10))
    await ctx.route("**/media/*", serve_media)
    page = await ctx.new_page()
    await page.route_web_socket(re.compile(r"/v1/stream$"), stream)
    await page.goto(page_url(system), timeout=ms(15))

    overlay = page.get_by_role("alertdialog")
    child_photo = overlay.locator(".person.child img")
    await expect(child_photo).to_have_attribute("alt", "Sofia, photo from 2026")
    await expect(child_photo).to_have_attribute("src", f"{api}/media/{child_sha}")
    await expect(child_photo).to_have_js_property("naturalWidth", 120)
    gallery = overlay.locator("#alert-gallery img")
    await expect(gallery).to_have_count(1)
    await expect(gallery).to_have_attribute("alt", "Park")
    assert hellos == [{"type": "hello", "seen": [], "lat": LAT, "lon": LON}], hellos
    await page.screenshot(path=tmp_path / "interrupt-photos.png", animations="disabled")

    await overlay.get_by_role("button", name="Dismiss").click()
    await expect(overlay.locator("#alert-headline")).to_have_text("AMBER Alert: sentinel")
    await expect(overlay.locator("#alert-queue")).to_have_text("")
    await overlay.get_by_role("button", name="Dismiss").click()
    await expect(overlay).to_be_hidden()
