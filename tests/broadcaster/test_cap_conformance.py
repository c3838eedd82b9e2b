"""The real-CAP conformance suite: every message of ``tests/data/cap/real`` (sources in
its SOURCES.md) posted through the live hook, with its expected answer.

Each message is moved in time as a whole (every timestamp shifted so that ``sent`` is a
minute ago), bytes otherwise untouched, and posted by a US-wide agency. The default
deployment publishes Child Abduction Emergencies only, so most real messages (weather,
tests, earthquakes) are refused as events; the same corpus is then posted to a
deployment accepting every event code, which proves that parsing, validation and
storage work on them, and the state each accepted message reaches is checked.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from amber_relay.settings import Settings
from tests.conftest import System, running_system
from tests.support import Agency, seconds, signed

REAL = Path(__file__).resolve().parent.parent / "data" / "cap" / "real"
_TIME = re.compile(rb"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")
_SENT = re.compile(rb"<(?:\w+:)?sent>\s*([^<]+?)\s*</")

# file -> (status, code) under the default policy (CAE only).
DEFAULT = {
    "athoc-ipaws-cancel-no-info.xml": (404, "alert_unknown"),
    "bom-australia-thunderstorm.xml": (422, "event_code_missing"),
    "cameroon-heavy-rain.xml": (422, "event_code_missing"),
    "cma-baoding-lightning.xml": (422, "event_code_missing"),
    "dwd-thunderstorm-thuringia.xml": (422, "event_code_missing"),
    "eccc-alberta-wind-warning-update.xml": (422, "event_not_accepted"),
    "eccc-naad-special-weather-statement.xml": (422, "event_code_missing"),
    "eccc-ontario-thunderstorm-update.xml": (422, "event_not_accepted"),
    "eccc-saskatchewan-snowfall.xml": (422, "event_not_accepted"),
    "eccc-saskatchewan-thunderstorm-update.xml": (422, "event_not_accepted"),
    "geosphere-austria-thunderstorm.xml": (422, "event_code_missing"),
    "imo-iceland-wind.xml": (422, "event_code_missing"),
    "ipaws-alabama-rwt-cancel.xml": (404, "alert_unknown"),
    "ipaws-carroll-county-md-law-enforcement.xml": (422, "event_not_accepted"),
    "ipaws-contra-costa-hazmat-shelter.xml": (422, "event_not_accepted"),
    "ipaws-cresa-adr-test.xml": (422, "event_not_accepted"),
    "ipaws-mcduffie-county-ga-lae.xml": (422, "event_not_accepted"),
    "ipaws-michigan-cem.xml": (422, "event_not_accepted"),
    "ipaws-montgomery-lae-excerpt.xml": (422, "event_not_accepted"),
    "ipaws-nevada-cancel-alertsense.xml": (404, "alert_unknown"),
    "ipaws-rmt-puerto-rico.xml": (422, "event_not_accepted"),
    "kmi-belgium-rain.xml": (422, "event_code_missing"),
    "krisinformation-sweden-news.xml": (422, "event_code_missing"),
    "krisinformation-trident-juncture-news.xml": (422, "event_code_missing"),
    "nms-belize-small-craft.xml": (422, "event_code_missing"),
    "ntwc-tsunami-cancellation-paaq.xml": (422, "event_code_missing"),
    "ntwc-tsunami-warning-update-aleutians.xml": (422, "event_code_missing"),
    "nws-honolulu-small-craft-marine.xml": (422, "event_not_accepted"),
    "nws-ipaws-beach-hazards-update.xml": (422, "event_not_accepted"),
    "nws-ipaws-hurricane-warning-laura.xml": (422, "event_not_accepted"),
    "oasis-cap12-a1-homeland-security.xml": (422, "event_code_missing"),
    "oasis-cap12-a2-thunderstorm.xml": (422, "event_not_accepted"),
    "oasis-cap12-a3-earthquake.xml": (422, "event_code_missing"),
    # No <expires>: it lasts AMBER_CAP_DEFAULT_LIFETIME_S (24 h) after sent, with a warning.
    "oasis-cap12-a4-amber.xml": (202, "active"),
    "onm-algeria-heatwave.xml": (422, "event_code_missing"),
    "pagasa-tropical-cyclone-test.xml": (422, "event_code_missing"),
    "rfs-nsw-mva-edxl-prefixed.xml": (422, "event_code_missing"),
    "rfs-nsw-structure-fire.xml": (422, "event_code_missing"),
    "sma-seychelles-strong-winds.xml": (422, "event_code_missing"),
    "smhi-sweden-alpine-weather.xml": (422, "event_code_missing"),
    "smhi-sweden-gale-kattegat.xml": (422, "event_code_missing"),
    "smhi-sweden-heavy-snow-gavleborg-coast.xml": (422, "event_code_missing"),
    "smhi-sweden-heavy-snow-gavleborg-inland.xml": (422, "event_code_missing"),
    "smhi-sweden-heavy-snow-orebro.xml": (422, "event_code_missing"),
    "smhi-sweden-heavy-snow-varmland.xml": (422, "event_code_missing"),
    "smhi-sweden-heavy-snow-vasternorrland.xml": (422, "event_code_missing"),
    "smhi-sweden-heavy-snow-vastmanland.xml": (422, "event_code_missing"),
    "smn-mexico-tropical-storm-update.xml": (422, "event_code_missing"),
    "usgs-earthquake-cap11.xml": (422, "cap_namespace"),
    "usgs-earthquake-iso8859-1.xml": (422, "event_not_accepted"),
    "wra-taiwan-reservoir.xml": (422, "event_code_missing"),
}

# file -> (status, code or the state the accepted message reaches) accepting every event.
OPEN = {
    **DEFAULT,
    # Environment Canada uses SAME event codes too: a Canadian area, outside the US.
    "eccc-saskatchewan-snowfall.xml": (403, "outside_jurisdiction"),
    "ipaws-cresa-adr-test.xml": (202, "active"),
    "ipaws-michigan-cem.xml": (202, "active"),
    "ipaws-montgomery-lae-excerpt.xml": (202, "active"),
    "ipaws-rmt-puerto-rico.xml": (202, "stored (test, not public)"),
    "nws-ipaws-beach-hazards-update.xml": (202, "active"),
    # Hawaiian waters only: every SAME code is a marine zone.
    "nws-honolulu-small-craft-marine.xml": (422, "marine_only_area"),
    "oasis-cap12-a2-thunderstorm.xml": (202, "active"),
    # USGS marks the epicentre with a circle of radius 0, which covers nobody.
    "usgs-earthquake-iso8859-1.xml": (422, "cap_bad_circle"),
    # Canadian areas under SAME event codes (SVR, HWW): outside the US.
    "eccc-alberta-wind-warning-update.xml": (403, "outside_jurisdiction"),
    "eccc-ontario-thunderstorm-update.xml": (403, "outside_jurisdiction"),
    "eccc-saskatchewan-thunderstorm-update.xml": (403, "outside_jurisdiction"),
    "ipaws-carroll-county-md-law-enforcement.xml": (202, "active"),
    "ipaws-contra-costa-hazmat-shelter.xml": (202, "active"),
    "ipaws-mcduffie-county-ga-lae.xml": (202, "active"),
    # An Update whose references are unknown here starts a new alert (the 3-point sliver
    # polygon next to the parish outline is accepted with it).
    "nws-ipaws-hurricane-warning-laura.xml": (202, "active"),
}


def shifted(body: bytes, now: datetime) -> bytes:
    """The message with every timestamp moved by one delta so that sent is a minute ago."""
    m = _SENT.search(body)
    assert m is not None, "no <sent>"
    delta = now - timedelta(minutes=1) - datetime.fromisoformat(m[1].decode())

    def move(t: re.Match[bytes]) -> bytes:
        moved = datetime.fromisoformat(t[0].decode()) + delta
        return moved.isoformat(timespec="seconds").encode()

    return _TIME.sub(move, body)


async def answer(system: System, national: Agency, name: str) -> tuple[int, str]:
    """Post one corpus message; (status, problem code) or (202, the state it reaches)."""
    body = shifted((REAL / name).read_bytes(), datetime.now(UTC))
    r = await signed(
        system.http, "POST", "/v1/alerts", national, body, content_type="application/cap+xml"
    )
    if r.status_code != 202:
        return r.status_code, r.json()["code"]
    alert_id = r.json()["id"]
    for _ in range(250):  # bounded: the worker applies within milliseconds
        status = await signed(system.http, "GET", f"/v1/alerts/{alert_id}", national)
        state = str(status.json()["state"])
        if state != "queued":
            return 202, state
        await asyncio.sleep(seconds(0.02))
    return 202, "queued"


async def run_corpus(system: System, agency: Agency) -> dict[str, tuple[int, str]]:
    national = Agency("ncmec", agency.secret)  # jurisdiction ["US"] in the agencies file
    return {p.name: await answer(system, national, p.name) for p in sorted(REAL.glob("*.xml"))}


@pytest_asyncio.fixture
async def open_system(settings: Settings) -> AsyncIterator[System]:
    """The live system accepting every SAME event code."""
    async with running_system(settings.replace(accepted_event_codes=("*",))) as running:
        yield running


def test_every_corpus_file_has_an_expected_answer_and_a_source() -> None:
    """The tables and SOURCES.md cover exactly the files of the corpus."""
    files = {p.name for p in REAL.glob("*.xml")}
    assert set(DEFAULT) == files == set(OPEN)
    sources = (REAL / "SOURCES.md").read_text(encoding="utf-8")
    assert [f for f in sorted(files) if f"`{f}`" not in sources] == []


@pytest.mark.asyncio
async def test_real_corpus_under_the_amber_only_policy(system: System, agency: Agency) -> None:
    """Every real message gets its expected answer from the default (CAE-only) deployment."""
    assert await run_corpus(system, agency) == DEFAULT


@pytest.mark.asyncio
async def test_real_corpus_accepting_every_event(open_system: System, agency: Agency) -> None:
    """With every event accepted, US messages are stored and applied; the rest are refused
    for what they are (no SAME event code, CAP 1.1, outside the US)."""
    assert await run_corpus(open_system, agency) == OPEN
