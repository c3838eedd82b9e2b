"""The broadcaster's state: active alerts, open sockets, and who was sent what.

The hub decides every frame a socket gets: on publish (fan-out), on hello (resume),
on move (late entry) and on clear (cancel, expiry, area change). It does no I/O of
its own: ``Socket.send`` hands bytes to a transport and never waits, so one slow
client cannot hold up the others.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter
from collections.abc import Iterable

from rtree import index as rtree_index

from amber_relay import frames
from amber_relay.geo import Area
from amber_relay.geodata import GeoData
from amber_relay.model import AlertRecord
from amber_relay.store import Event

from . import _wire
from ._hub_types import Answer, ClearReason, Prepared, Socket, _Active
from .index import Cell, SocketIndex

__all__ = ["Answer", "Hub", "Prepared", "Socket"]

log = logging.getLogger("amber_relay.hub")

# Up to this many active alerts, hello/move scan them instead of querying the R-tree.
_SCAN_MAX = 16
StatKey = tuple[str, int, str]
# Versions before the current one whose "sent" sets are kept for acks: a user may tap
# a button on version 1 just as version 2 arrives.
_EARLIER_VERSIONS = 4


class Hub:
    """Active alerts and sockets of one broadcaster process."""

    def __init__(self, geodata: GeoData, *, cell_deg: float) -> None:
        # Kept for checking county codes clients send and for records stored before
        # they carried their regions (the feed completes those off the loop); fan-out
        # itself uses no county geometry.
        self.geodata = geodata
        self.index: SocketIndex[Socket] = SocketIndex(cell_deg)
        self.alerts: dict[str, _Active] = {}
        self.ended: dict[str, ClearReason] = {}
        self.stats: Counter[StatKey] = Counter()
        self.frames_sent: Counter[str] = Counter()
        """Frames handed to sockets by type, counted per batch (read by the metrics)."""
        self._rtree = rtree_index.Index()
        self._handles = itertools.count(1)
        self._clear_frames: dict[tuple[str, str], bytes] = {}
        self._welcome_frames: dict[tuple[str, int, float], bytes] = {}
        self._by_region: dict[str, set[str]] = {}
        """County code -> ids of the active alerts touching it."""
        self.generation = 0
        """Bumped on every change of the active set (ETag of the poll fallback)."""

    # -- alerts ------------------------------------------------------------------

    def apply(self, event: Event, prepared: Prepared | None = None) -> None:
        """Apply one stream event: publish a version (with ``prepared``, if built for
        it), or clear an alert."""
        if event.kind == "publish" and event.record is not None:
            self.publish(event.record, prepared)
        elif event.kind == "clear" and event.reason is not None:
            current = self.alerts.get(event.id)
            if current is None or current.record.version <= event.version:
                self.clear(event.id, event.reason)

    def sync(
        self,
        active: dict[str, AlertRecord],
        ended: dict[str, str],
        prepared: dict[str, Prepared] | None = None,
    ) -> None:
        """Make the mirror equal a snapshot of the store (start, or after a lost stream).

        ``prepared`` holds what :meth:`prepare` built for some of the records, by id.
        """
        prepared = prepared or {}
        for alert_id, reason in ended.items():
            if reason in ("cancelled", "expired"):
                self.ended[alert_id] = reason  # type: ignore[assignment]
        for alert_id in [a for a in self.alerts if a not in active]:
            reason = self.ended.get(alert_id, "expired")
            self.clear(alert_id, "cancelled" if reason == "cancelled" else "expired")
        for alert_id, record in active.items():
            self.publish(record, prepared.get(alert_id))
        # End markers the store swept (retention passed) go here too: bounded memory.
        for alert_id in [a for a in self.ended if a not in ended]:
            del self.ended[alert_id]

    def newer(self, record: AlertRecord) -> bool:
        """Whether ``record`` is newer than the alert's current version (publish would apply it)."""
        old = self.alerts.get(record.id)
        return old is None or old.record.version < record.version

    def prepare(self, record: AlertRecord, occupied: Iterable[Cell]) -> Prepared:
        """Build what publishing ``record`` needs that depends on the record alone.

        The area (shapely geometry from the coordinates), the interrupt frame and the
        classes of the cells in ``occupied`` the area is near: the costly part of a
        publish for a large area (tens of ms for 20,000 vertices or 100 circles), which
        must not stall the sockets' event loop. Pure: reads no state of the hub but the
        grid size, so it may run in a worker thread; take ``occupied`` on the loop
        (``list(hub.index.cells)``). Its result goes to :meth:`publish` on the loop.
        """
        area = Area.from_coords(record.polygons, record.circles)
        frame = _wire.frame_of(frames.Interrupt(alert=record.content))
        return Prepared(record, area, frame, self.index.classify_near(area, occupied))

    def publish(self, record: AlertRecord, prepared: Prepared | None = None) -> int:
        """Make ``record`` the alert's current version and send it to every socket inside.

        Sockets that had an older version and are outside the new area get ``clear``
        (area_changed). Returns the number of sockets sent the interrupt. Versions not
        newer than the current one are ignored. ``prepared`` (from :meth:`prepare` for
        this very record, else ignored) saves building the area and classifying the
        cells it covers here; cells occupied since it was built are classified here.
        """
        old = self.alerts.get(record.id)
        if old is not None and old.record.version >= record.version:
            return 0
        if prepared is None or prepared.record is not record:
            # Built here, on the loop; the cells it covers are classified as they are matched.
            prepared = self.prepare(record, ())
        area = prepared.area
        alert = _Active(
            record=record,
            area=area,
            frame=prepared.frame,
            # Computed at ingest, off every loop: no county geometry here.
            regions=frozenset(record.regions or ()),
            handle=next(self._handles),
            # Taken over, not copied (tens of thousands of cells for a state): a
            # Prepared is built for one publish.
            inside_cells=prepared.cells,
        )
        if old is not None:
            self._rtree.delete(old.handle, old.area.bbox)
            self._file_regions(old, add=False)
        self._rtree.insert(alert.handle, area.bbox, obj=record.id)
        self._file_regions(alert, add=True)
        self.alerts[record.id] = alert
        self.ended.pop(record.id, None)
        self.generation += 1
        sent = matched = 0
        for chunk in self.index.match(area, alert.regions, alert.inside_cells):
            matched += len(chunk)
            sent += self._send_all(chunk, alert.frame)
            alert.got.update(chunk)
        if old is not None:
            left = old.got.difference(alert.got)
            left.update(old.claims.difference(alert.got))
            if left:
                n = self._send_all(left, self._clear_frame(record.id, "area_changed"))
                self.frames_sent["clear"] += n
            self._carry(old, alert)
        self.frames_sent["interrupt"] += sent
        self._count(record, "matched", matched)
        self._count(record, "delivered", sent)
        return sent

    def clear(self, alert_id: str, reason: ClearReason) -> int:
        """End an alert: every socket sent it gets ``clear``. Returns that count."""
        alert = self.alerts.pop(alert_id, None)
        if reason != "area_changed":
            self.ended[alert_id] = reason
        if alert is None:
            return 0
        self._rtree.delete(alert.handle, alert.area.bbox)
        self._file_regions(alert, add=False)
        self.generation += 1
        frame = self._clear_frame(alert_id, reason)
        n = self._send_all(alert.got, frame) + self._send_all(alert.claims, frame)
        self.frames_sent["clear"] += n
        return n

    def _file_regions(self, alert: _Active, *, add: bool) -> None:
        alert_id = alert.record.id
        for region in alert.regions:
            ids = self._by_region.get(region)
            if add:
                if ids is None:
                    ids = self._by_region[region] = set()
                ids.add(alert_id)
            elif ids is not None:
                ids.discard(alert_id)
                if not ids:
                    del self._by_region[region]

    @staticmethod
    def _carry(old: _Active, new: _Active) -> None:
        # Acks for the last few versions still count (sent sets) and still count once.
        earlier = old.earlier
        earlier[old.record.version] = old.got
        while len(earlier) > _EARLIER_VERSIONS:
            dropped = min(earlier)
            del earlier[dropped]
            for key in [k for k in old.acked if k[0] == dropped]:
                del old.acked[key]
        new.earlier = earlier
        new.acked = old.acked

    def answer(
        self,
        lat: float | None,
        lon: float | None,
        region: str | None,
        seen: Iterable[tuple[str, int]],
    ) -> Answer:
        """What a client at this place that has shown ``seen`` should get now.

        The same rule as a hello: every covering alert not shown at its current
        version, and a clear for each shown alert that has ended (or whose newer
        version no longer covers the place).
        """
        shown = dict(seen)
        covering = self._live(self._covering(lat, lon, region))
        alerts = [a.record for a in covering if shown.get(a.record.id, 0) < a.record.version]
        covered = {a.record.id for a in covering}
        clears: list[tuple[str, ClearReason]] = []
        for alert_id, version in shown.items():
            alert = self.alerts.get(alert_id)
            if alert is not None:
                if alert_id not in covered and version < alert.record.version:
                    clears.append((alert_id, "area_changed"))
            elif alert_id in self.ended:
                clears.append((alert_id, self.ended[alert_id]))
        return Answer(alerts, clears)

    def _covering(self, lat: float | None, lon: float | None, region: str | None) -> list[_Active]:
        alerts = self.alerts
        if not alerts:
            return []
        if region is not None:
            # The carried regions are exact (counties the area touches): no geometry.
            return [alerts[i] for i in self._by_region.get(region, ())]
        if lat is None or lon is None:
            return []
        if len(alerts) <= _SCAN_MAX:
            # 0-3 alerts are active at once: a bbox test per alert costs far less than
            # an R-tree query through ctypes, on every hello.
            return [
                a
                for a in alerts.values()
                if a.area.bbox[1] <= lat <= a.area.bbox[3]
                and a.area.bbox[0] <= lon <= a.area.bbox[2]
                and a.area.contains(lat, lon)
            ]
        ids = self._rtree.intersection((lon, lat, lon, lat), objects="raw")
        found = [alerts[str(i)] for i in ids]
        return [a for a in found if a.area.contains(lat, lon)]

    def _live(self, alerts: list[_Active]) -> list[_Active]:
        # The worker's expiry sweep is the rule; this is the safety net while the
        # worker is down: an expired alert is never handed to a new client.
        now = time.time()
        return [a for a in alerts if a.record.expires_ts > now]

    # -- sockets -----------------------------------------------------------------

    def hello(
        self, sock: Socket, seen: Iterable[tuple[str, int]], node: str, ping_s: float
    ) -> None:
        """Register a socket and send what it missed: welcome, interrupts, clears."""
        shown = list(seen)
        self.index.add(sock)
        answer = self.answer(sock.lat, sock.lon, sock.region, shown)
        sock.send(self._welcome_frame(node, len(answer.alerts), ping_s))
        self.frames_sent["welcome"] += 1
        self.frames_sent["clear"] += len(answer.clears)
        for record in answer.alerts:
            self._deliver(sock, self.alerts[record.id])
        for alert_id, reason in answer.clears:
            sock.send(self._clear_frame(alert_id, reason))
        # Alerts the client still shows must reach it with their cancel or update; a
        # claim is kept apart from ``got``: it was not sent here, so its acks never count.
        cleared = {alert_id for alert_id, _ in answer.clears}
        for alert_id, _ in shown:
            alert = self.alerts.get(alert_id)
            if alert is not None and alert_id not in cleared and sock not in alert.got:
                alert.claims.add(sock)

    def moved(self, sock: Socket) -> None:
        """Re-file a socket after its tag changed and send alerts it entered."""
        self.index.add(sock)
        for a in self._live(self._covering(sock.lat, sock.lon, sock.region)):
            if sock not in a.got and sock not in a.claims:
                self._deliver(sock, a)

    def unfile(self, sock: Socket) -> None:
        """Take a socket out of the index (before a move, or for good)."""
        self.index.remove(sock)

    def closed(self, sock: Socket) -> None:
        """Forget a socket entirely."""
        self.index.remove(sock)
        for a in self.alerts.values():
            a.got.discard(sock)
            a.claims.discard(sock)
            for sent in a.earlier.values():
                sent.discard(sock)
            for done in a.acked.values():
                done.discard(sock)

    def ack(self, sock: Socket, alert_id: str, version: int, event: str) -> None:
        """Count a user's action on an alert (shown, dismissed, call, more).

        An ack counts at most once per socket, (id, version) and event, and only for
        a version of an active alert this socket was sent on this connection (the
        current one or one of the few before it). Claims in a hello's ``seen`` never
        count: a client cannot inflate an agency's figures or fill Redis with keys.
        """
        alert = self.alerts.get(alert_id)
        if alert is None:
            return
        sent = alert.got if version == alert.record.version else alert.earlier.get(version)
        if sent is None or sock not in sent:
            return
        done = alert.acked.get((version, event))
        if done is None:
            done = alert.acked[(version, event)] = set()
        elif sock in done:
            return
        done.add(sock)
        self.stats[(alert_id, version, event)] += 1

    def take_stats(self) -> Counter[StatKey]:
        """Counters gathered since the last call (for flushing to Redis)."""
        stats, self.stats = self.stats, Counter()
        return stats

    # -- helpers -----------------------------------------------------------------

    def _deliver(self, sock: Socket, a: _Active) -> None:
        a.got.add(sock)
        a.claims.discard(sock)
        self._count(a.record, "matched", 1)
        if sock.send(a.frame):
            self._count(a.record, "delivered", 1)
            self.frames_sent["interrupt"] += 1

    def _count(self, record: AlertRecord, figure: str, n: int) -> None:
        if n:
            self.stats[(record.id, record.version, figure)] += n

    def _welcome_frame(self, node: str, active: int, ping_s: float) -> bytes:
        # Every hello gets one of a handful of welcomes: encode each once.
        key = (node, active, ping_s)
        data = self._welcome_frames.get(key)
        if data is None:
            welcome = frames.Welcome(node=node, active=active, ping_interval_s=ping_s)
            data = self._welcome_frames[key] = _wire.frame_of(welcome)
        return data

    def _clear_frame(self, alert_id: str, reason: ClearReason) -> bytes:
        key = (alert_id, reason)
        data = self._clear_frames.get(key)
        if data is None:
            data = _wire.frame_of(frames.Clear(id=alert_id, reason=reason))
            if len(self._clear_frames) > 1024:
                self._clear_frames.clear()
            self._clear_frames[key] = data
        return data

    @staticmethod
    def _send_all(socks: Iterable[Socket], data: bytes) -> int:
        # The hot path: one pre-built frame handed to each transport, no awaits.
        n = 0
        for s in socks:
            if s.send(data):
                n += 1
        return n
