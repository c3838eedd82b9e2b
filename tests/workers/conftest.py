"""Fixtures of the worker tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.workers._photoserver import SlowPhotos


@pytest_asyncio.fixture
async def slow_photos() -> AsyncIterator[SlowPhotos]:
    """A photo server on loopback whose first ``/slow.png`` fetch hangs."""
    server = SlowPhotos()
    await server.start()
    yield server
    await server.close()
