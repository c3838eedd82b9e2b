"""The types the hub is made of: what a socket looks like to it, an active alert, a
version prepared off the loop, and the answer to a hello."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from amber_relay.geo import Area
from amber_relay.model import AlertRecord

from .index import Cell

__all__ = ["Answer", "ClearReason", "Prepared", "Socket"]

ClearReason = Literal["cancelled", "expired", "area_changed"]


@dataclass(frozen=True)
class Answer:
    """The alerts to show and the alerts to take down, for one place and seen list."""

    alerts: list[AlertRecord]
    clears: list[tuple[str, ClearReason]]


class Socket(Protocol):
    """An open, hello'd client connection as the hub sees it."""

    lat: float | None
    lon: float | None
    region: str | None
    cell: Cell | None
    slot: int

    def send(self, data: bytes) -> bool:
        """Queue bytes on the transport without waiting; false if the socket is closed."""
        ...


@dataclass(frozen=True, eq=False)
class Prepared:
    """The pure part of publishing one record, built by :meth:`Hub.prepare` off the loop."""

    record: AlertRecord
    area: Area
    frame: bytes
    cells: dict[Cell, int]
    """Classes of the cells occupied when it was built; :meth:`Hub.publish` takes this
    dict over as the alert's ``inside_cells`` (a Prepared serves one publish)."""


@dataclass(eq=False)
class _Active:
    record: AlertRecord
    area: Area
    frame: bytes
    regions: frozenset[str]
    handle: int
    got: set[Socket] = field(default_factory=set)
    """Sockets sent the current version on their connection: the only ones whose acks count."""
    claims: set[Socket] = field(default_factory=set)
    """Sockets not in ``got`` whose hello said they show this alert: they get its
    cancel or update, but a claim is not a delivery and their acks never count."""
    earlier: dict[int, set[Socket]] = field(default_factory=dict)
    """``got`` of the previous versions (at most the hub's ``_EARLIER_VERSIONS``), for late acks."""
    acked: dict[tuple[int, str], set[Socket]] = field(default_factory=dict)
    """(version, event) -> sockets whose ack already counted: one per socket."""
    inside_cells: dict[Cell, int] = field(default_factory=dict)
