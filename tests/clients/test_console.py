"""The agency console (clients/web/console.html) in a real headless Chromium, end to end."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.async_api import Browser, Page, expect

from tests.broadcaster.test_preview import reach_until
from tests.clients import test_page
from tests.clients.test_page import (
    LAT,
    LON,
    Tab,
    connected,
    ms,
    open_tab,
    page_url,
    portrait,
    seen_in_storage,
)
from tests.conftest import System
from tests.support import Agency, Client, alert_doc

pytestmark = [pytest.mark.asyncio, pytest.mark.browser]

DALLAS = (32.78, -96.80)  # Dallas County: far outside Bexar
browser = test_page.browser  # the fixture: Debian's Chromium through playwright
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "img"


async def console(browser: Browser, system: System) -> Tab:
    """The console at desktop size."""
    return await open_tab(
        browser, f"{system.endpoints.api_url}/console", viewport={"width": 1280, "height": 900}
    )


async def sign_in(page: Page, agency: Agency, secret: str | None = None) -> None:
    await page.get_by_label("Agency id").fill(agency.id)
    await page.get_by_label("Secret").fill(secret if secret is not None else agency.secret)
    await page.get_by_role("button", name="Sign in").click()


async def signed_in(page: Page) -> None:
    await expect(page.locator("#workspace")).to_be_visible(timeout=ms(15))


async def pick_bexar(page: Page) -> None:
    """Show Texas's counties and click Bexar County on the map."""
    await page.get_by_label("State", exact=True).select_option("48")
    bexar = page.locator('#map path[data-fips="48029"]')
    await expect(bexar).to_be_visible(timeout=ms(15))
    await bexar.click()
    await expect(page.locator('#area-list li[data-fips="48029"]')).to_contain_text("Bexar")


def figure(page: Page, version: int, name: str) -> Any:
    return page.locator(f'#funnel table[data-version="{version}"] td.count[data-figure="{name}"]')


async def test_console_previews_reach_sends_watches_and_cancels(
    browser: Browser, system: System, agency: Agency, tmp_path: Path
) -> None:
    """Pick Bexar; reach = clients inside; send; pages inside show it; acks move; cancel clears."""
    inside = [await Client.open(system.stream_url, lat=LAT + i * 0.01, lon=LON) for i in range(2)]
    county = await Client.open(system.stream_url, region="48029")
    outside = [await Client.open(system.stream_url, lat=DALLAS[0], lon=DALLAS[1])]
    phone_in = await open_tab(browser, page_url(system), reduced_motion="reduce")
    phone_out = await open_tab(browser, page_url(system, f"lat={DALLAS[0]}&lon={DALLAS[1]}"))
    for tab in (phone_in, phone_out):
        await connected(tab.page)
    # the broadcaster publishes counts on a timer: wait until they include everyone
    await reach_until(system, agency, alert_doc("TX-CONSOLE-WAIT", same=["048029"]), 4)

    tab = await console(browser, system)
    page = tab.page
    await sign_in(page, agency)
    await signed_in(page)
    await page.get_by_label("Identifier").fill("TX-CONSOLE-1")
    await page.get_by_label("Headline", exact=True).fill("AMBER Alert: Ana Example, 6")
    await page.get_by_label("Description", exact=True).fill(
        "Ana was taken from a school in San Antonio."
    )
    await page.get_by_role("button", name="Add a child").click()
    await page.get_by_label("Name", exact=True).first.fill("Ana Example")
    await page.get_by_label("Age", exact=True).first.fill("6")
    await page.get_by_label("Photo numbers (e.g. 1, 2)").fill("1")
    photo = tmp_path / "ana.png"
    photo.write_bytes(portrait())
    await page.locator("#photo-files").set_input_files(str(photo))
    await page.get_by_role("button", name="Add a vehicle").click()
    await page.get_by_label("Plate", exact=True).fill("XYZ9876")
    await page.get_by_label("Headline (Spanish)").fill("Alerta AMBER: Ana Example, 6")
    await pick_bexar(page)

    await page.get_by_role("button", name="Preview").click()
    reach = page.locator("#reach")
    await expect(reach).to_have_attribute("data-connected", "4", timeout=ms(15))
    await expect(page.locator("#map path.resolved-area")).to_have_count(1)
    screen = page.locator("#phone")
    await expect(screen.locator(".headline")).to_have_text("AMBER Alert: Ana Example, 6")
    await expect(screen.locator(".plate-number")).to_have_text("XYZ9876")
    await expect(screen.locator(".person img.photo")).to_have_count(1)
    await page.get_by_role("button", name="Español").click()
    await expect(screen.locator(".headline")).to_have_text("Alerta AMBER: Ana Example, 6")
    await page.get_by_role("button", name="English").click()
    await page.evaluate("() => window.scrollTo(0, 0)")
    await page.screenshot(path=str(tmp_path / "console.png"), full_page=False)

    await page.get_by_role("button", name="Send alert").click()
    await expect(page.locator("#send-result")).to_contain_text(
        "Accepted: txdps/TX-CONSOLE-1 version 1"
    )
    dialog = phone_in.page.get_by_role("alertdialog")
    await expect(dialog).to_be_visible(timeout=ms(15))
    await expect(dialog.locator("#alert-headline")).to_have_text("AMBER Alert: Ana Example, 6")
    await phone_in.page.screenshot(path=str(tmp_path / "interrupt.png"))
    for c in [*inside, county]:
        frame = await c.next_of("interrupt")
        assert frame["alert"]["id"] == "txdps/TX-CONSOLE-1"
        await c.send({"type": "ack", "id": "txdps/TX-CONSOLE-1", "version": 1, "event": "shown"})
    await inside[0].send({"type": "ack", "id": "txdps/TX-CONSOLE-1", "version": 1, "event": "call"})

    # the live view: the page's own "shown" ack and the three clients' acks
    await expect(page.locator("#watch")).to_be_visible()
    await expect(figure(page, 1, "matched")).to_have_text("4", timeout=ms(15))
    await expect(figure(page, 1, "delivered")).to_have_text("4", timeout=ms(15))
    await expect(figure(page, 1, "shown")).to_have_text("4", timeout=ms(15))
    await expect(figure(page, 1, "call")).to_have_text("1", timeout=ms(15))
    await expect(page.locator("#chart polyline")).to_have_count(6)
    await expect(page.locator('#alert-list li[data-id="txdps/TX-CONSOLE-1"]')).to_be_visible(
        timeout=ms(15)
    )
    await page.evaluate("() => window.scrollTo(0, 0)")
    await page.screenshot(path=str(tmp_path / "console-live.png"), full_page=False)

    # update: the same identifier with a new headline is version 2, replacing it in place
    await page.get_by_label("Headline", exact=True).fill("AMBER Alert: Ana Example, 6 (update)")
    await page.get_by_role("button", name="Preview").click()
    send_update = page.get_by_role("button", name="Send update (version 2)")
    await expect(send_update).to_be_visible(timeout=ms(15))
    await send_update.click()
    await expect(page.locator("#send-result")).to_contain_text(
        "Accepted: txdps/TX-CONSOLE-1 version 2"
    )
    await expect(dialog.locator("#alert-headline")).to_have_text(
        "AMBER Alert: Ana Example, 6 (update)", timeout=ms(15)
    )
    await expect(dialog.locator("#alert-updated")).to_be_visible()
    for c in [*inside, county]:
        assert (await c.next_of("interrupt"))["alert"]["version"] == 2
    await expect(figure(page, 2, "delivered")).to_have_text("4", timeout=ms(15))
    await expect(figure(page, 2, "shown")).to_have_text("1", timeout=ms(15))  # the page's own

    cancel = page.get_by_role("button", name="Cancel this alert")
    await cancel.click()
    await page.get_by_role("button", name="Press again to cancel txdps/TX-CONSOLE-1").click()
    await expect(dialog).to_be_hidden(timeout=ms(15))
    await expect(phone_in.page.locator("#notice")).to_have_text("Alert cancelled")
    for c in [*inside, county]:
        assert (await c.next_of("clear"))["reason"] == "cancelled"
    await expect(page.locator("#watch-state")).to_have_attribute(
        "data-state", "cancelled", timeout=ms(15)
    )

    # outside: the raw client's and the page's next alert is a later one (never ours)
    await system.sentinel(agency, outside, "TX-CONSOLE-SENTINEL")
    out_dialog = phone_out.page.get_by_role("alertdialog")
    await expect(out_dialog).to_be_visible(timeout=ms(15))
    assert [s[0] for s in await seen_in_storage(phone_out.page)] == ["ncmec/TX-CONSOLE-SENTINEL"]
    for t in (tab, phone_in, phone_out):
        t.check_no_errors()
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":  # refresh the README's pictures
        for name in ("console.png", "interrupt.png", "console-live.png"):
            small = Image.open(tmp_path / name).convert("RGB").quantize(colors=96)
            small.save(SHOTS / name, optimize=True)


async def test_console_refuses_a_wrong_secret_or_agency(
    browser: Browser, system: System, agency: Agency
) -> None:
    """A wrong secret or an unknown agency id is refused with a clear message."""
    tab = await console(browser, system)
    page = tab.page
    await sign_in(page, agency, secret="not-the-secret-at-all")
    error = page.locator("#signin-error")
    await expect(error).to_have_text(
        f"The secret is wrong for agency \u201c{agency.id}\u201d. Check it and try again."
    )
    await expect(page.locator("#workspace")).to_be_hidden()
    # the secret field was emptied: the page keeps no copy of what was typed
    await expect(page.get_by_label("Secret")).to_have_value("")
    await sign_in(page, Agency("nosuchagency", agency.secret))
    await expect(error).to_have_text("No agency \u201cnosuchagency\u201d: check the agency id.")
    stored = await page.evaluate(
        "() => JSON.stringify(localStorage) + JSON.stringify(sessionStorage)"
    )
    assert agency.secret not in stored
    # Chromium logs each refused request (401) as a console error; nothing else may fail
    assert [e for e in tab.errors if "status of 401" not in e] == []


async def test_console_shows_hook_errors_next_to_their_fields(
    browser: Browser, system: System, agency: Agency
) -> None:
    """A refusal naming a field is shown next to that field; area problems by the map."""
    tab = await console(browser, system)
    page = tab.page
    await sign_in(page, agency)
    await signed_in(page)
    await page.get_by_label("Headline", exact=True).fill("AMBER Alert: test")
    await page.get_by_role("button", name="Send alert").click()
    area_error = page.locator("#area-error")
    await expect(area_error).to_contain_text("area needs at least one of")
    await pick_bexar(page)
    past = time.strftime("%Y-%m-%dT%H:%M", time.localtime(time.time() - 3600))
    await page.get_by_label("Expires (your local time)").fill(past)
    await page.get_by_role("button", name="Send alert").click()
    expires = page.get_by_label("Expires (your local time)")
    await expect(expires).to_have_attribute("aria-invalid", "true")
    await expect(page.locator('[data-error-for="expires"]')).to_contain_text("is in the past")
    await expect(area_error).to_be_hidden()
    assert [e for e in tab.errors if "status of 422" not in e] == []  # the refusals themselves


async def test_console_is_usable_by_keyboard(
    browser: Browser, system: System, agency: Agency
) -> None:
    """Sign in, type a county and a circle, and preview without a pointer."""
    tab = await console(browser, system)
    page = tab.page
    await page.keyboard.press("Tab")  # the skip link
    await page.keyboard.press("Tab")
    await page.keyboard.type(agency.id)
    await page.keyboard.press("Tab")
    await page.keyboard.type(agency.secret)
    await page.keyboard.press("Enter")
    await signed_in(page)
    await page.keyboard.type("AMBER Alert: keyboard")  # focus is on the headline
    state = page.get_by_label("State", exact=True)
    await state.focus()
    await state.select_option("48")
    await expect(page.locator('#map path[data-fips="48453"]')).to_have_count(1, timeout=ms(15))
    await page.get_by_label("Add a county (name or 5-digit code)").fill(
        "Travis County, Texas (48453)"
    )
    await page.get_by_label("Add a county (name or 5-digit code)").press("Tab")
    await page.keyboard.press("Enter")  # the Add county button
    await expect(page.locator('#area-list li[data-fips="48453"]')).to_be_visible()
    await page.get_by_label("Circle latitude").fill(str(LAT))
    await page.get_by_label("longitude", exact=True).fill(str(LON))
    await page.get_by_label("radius km").fill("10")
    await page.get_by_role("button", name="Add circle").press("Enter")
    await expect(page.locator("#area-list")).to_contain_text("Circle 10 km")
    await page.get_by_role("button", name="Preview").focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#reach")).to_have_attribute("data-connected", "0", timeout=ms(15))
    await expect(page.locator("#preview-counties")).to_contain_text("Travis")
    tab.check_no_errors()


async def test_console_map_draws_polygons_and_circles_and_zooms(
    browser: Browser, system: System, agency: Agency
) -> None:
    """Click a polygon and drag a circle on the map; keys zoom; the preview draws the area."""
    tab = await console(browser, system)
    page = tab.page
    await sign_in(page, agency)
    await signed_in(page)
    await page.get_by_label("Headline", exact=True).fill("AMBER Alert: drawn")
    await page.get_by_label("State", exact=True).select_option("48")
    await expect(page.locator('#map path[data-fips="48029"]')).to_have_count(1, timeout=ms(15))
    await page.get_by_role("radio", name="Polygon").check()
    svg = page.locator("#map svg")
    box = await svg.bounding_box()
    assert box is not None
    # the middle of the map, which shows Texas: a small polygon there, then a circle
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    for dx, dy in ((-20, -20), (20, -20), (20, 20)):
        await page.mouse.click(cx + dx, cy + dy)
    await page.get_by_role("button", name="Finish polygon").click()
    await expect(page.locator("#area-list")).to_contain_text("Polygon 1 (3 points)")
    await page.get_by_role("radio", name="Circle").check()
    await page.mouse.move(cx + 60, cy)
    await page.mouse.down()
    await page.mouse.move(cx + 80, cy, steps=4)
    await page.mouse.up()
    await expect(page.locator("#area-list")).to_contain_text("Circle")
    before = await svg.get_attribute("viewBox")
    await svg.focus()
    await page.keyboard.press("+")
    assert await svg.get_attribute("viewBox") != before
    await page.get_by_role("button", name="Preview").click()
    await expect(page.locator("#map path.resolved-area")).to_have_count(1, timeout=ms(15))
    await expect(page.locator("#preview-counties")).to_contain_text("Counties touched: ")
    await expect(page.locator("#preview-problem")).to_be_hidden()
    tab.check_no_errors()
