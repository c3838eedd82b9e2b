"""Photos: fetched once by the worker, checked, stripped, stored content-addressed."""

from __future__ import annotations

import logging

from amber_relay.model import Photo, PhotoIn
from amber_relay.settings import Settings
from amber_relay.store import Store

__all__ = ["PhotoFetcher"]

log = logging.getLogger("amber_relay.photos")


class PhotoFetcher:
    """Turns submitted photos (URL or inline) into stored :class:`Photo` references."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    async def resolve(self, photos: list[PhotoIn]) -> list[Photo]:
        """Stored photos for those that could be fetched and checked; others are logged."""
        return []
