"""Lazy, bounded views of the boundaries file: geometries built on first use.

A serving process maps the file (shared with every other process through the page
cache) and builds a county's shapely geometry only when something asks for it; an LRU
keeps the recent ones. States (56, used by every jurisdiction check) are kept once built.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

import shapely
from shapely.geometry.base import BaseGeometry

from ._boundaries import Boundaries

__all__ = ["LazyGeometries", "VertexLRU"]

K = TypeVar("K")


class VertexLRU(Generic[K]):
    """A thread-safe LRU of geometries bounded by their total vertex count.

    The hook resolves SAME codes in worker threads, so two threads may build the same
    entry at once; the second result simply replaces the first.
    """

    def __init__(self, max_vertices: int) -> None:
        self.max_vertices = max_vertices
        self._items: OrderedDict[K, tuple[BaseGeometry, int]] = OrderedDict()
        self._vertices = 0
        self._lock = threading.Lock()

    def get(self, key: K, build: Callable[[], BaseGeometry]) -> BaseGeometry:
        """The cached geometry of ``key``, or ``build()`` (outside the lock), cached."""
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit[0]
        geom = build()
        shapely.prepare(geom)
        n = int(shapely.get_num_coordinates(geom))
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._vertices -= old[1]
            self._items[key] = (geom, n)
            self._vertices += n
            while self._vertices > self.max_vertices and len(self._items) > 1:
                _, (_, m) = self._items.popitem(last=False)
                self._vertices -= m
        return geom

    def __len__(self) -> int:
        return len(self._items)

    @property
    def vertices(self) -> int:
        """Vertices held now."""
        return self._vertices


class LazyGeometries(Mapping[str, BaseGeometry]):
    """``{code: geometry}`` over some features of a boundaries file, built on access.

    ``cache`` decides how long a built geometry lives (an LRU, or ``None``: forever).
    Membership, length and iteration never build a geometry.
    """

    def __init__(
        self,
        data: Boundaries,
        index: dict[str, int],
        cache: VertexLRU[str] | None,
    ) -> None:
        self._data = data
        self._index = index
        self._cache = cache
        self._kept: dict[str, BaseGeometry] = {}
        self._lock = threading.Lock()

    def __getitem__(self, code: str) -> BaseGeometry:
        i = self._index[code]  # KeyError for an unknown code, as a dict
        if self._cache is not None:
            return self._cache.get(code, lambda: self._data.geometry(i))
        geom = self._kept.get(code)
        if geom is None:
            geom = self._data.geometry(i)
            shapely.prepare(geom)
            with self._lock:
                geom = self._kept.setdefault(code, geom)
        return geom

    def __contains__(self, code: object) -> bool:
        return code in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def bounds(self, code: str) -> tuple[float, float, float, float]:
        """The feature's bounding box, without building it."""
        b = self._data.bbox[self._index[code]]
        return (float(b[0]), float(b[1]), float(b[2]), float(b[3]))

    def vertices(self, code: str) -> int:
        """The feature's vertex count, without building it."""
        return self._data.vertices(self._index[code])
