"""The in-process worker: stopping it leaves no job run behind."""

from __future__ import annotations

import asyncio

import pytest

from amber_relay.settings import Settings
from tests.conftest import running_system
from tests.support import Agency, alert_doc, seconds, square
from tests.workers._photoserver import SlowPhotos

pytestmark = pytest.mark.asyncio

SA = (29.42, -98.49)


async def test_stopping_mid_job_cancels_the_job_before_the_pool_closes(
    settings: Settings, agency: Agency, slow_photos: SlowPhotos
) -> None:
    """A shutdown during a job (a hanging photo fetch) ends arq's job task too, so
    nothing keeps using (and re-opening) the closed Redis pool afterwards."""
    before = asyncio.all_tasks()
    async with running_system(settings.replace(photo_allow_private_hosts=True)) as system:
        doc = alert_doc(
            "TX-STOP", polygon=square(*SA, 0.1), photos=[{"url": f"{slow_photos.url}/slow.png"}]
        )
        await system.post(agency, doc)
        async with asyncio.timeout(seconds(30)):
            await slow_photos.slow_requested.wait()
    left = [t for t in asyncio.all_tasks() - before if not t.done()]
    assert left == [], [t.get_coro() for t in left]
