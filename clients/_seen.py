"""What this device has shown: the (alert id, version) set behind exactly-once on screen.

The server sends an alert again whenever it cannot know it was shown (every hello
carries the seen list, but a frame may be in flight when a socket drops, and the poll
fallback overlaps the stream), so the client keeps the set and drops repeats. Cleared
alerts leave the set and leave a tombstone (id, version) behind, so a late copy of a
cancelled alert from a lagging broadcaster stays off screen. Both are capped, oldest
dropped first; the file format is versioned JSON written atomically.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from pathlib import Path

import msgspec

__all__ = ["DEFAULT_CAP", "Saver", "SeenSet", "load", "save"]

log = logging.getLogger("amber_relay.client")

DEFAULT_CAP = 256
"""The server's default ``max_seen``: a longer hello is refused with 1008."""


class _File(msgspec.Struct, kw_only=True):
    format: int = 1
    shown: list[tuple[str, int]] = []
    """Oldest first."""
    ended: list[tuple[str, int]] = []


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_File)


class SeenSet:
    """Shown alerts (id -> version) in the order shown, plus tombstones of cleared ones."""

    def __init__(self, cap: int = DEFAULT_CAP) -> None:
        if cap < 1:
            raise ValueError(f"cap must be >= 1, not {cap}")
        self.cap = cap
        # dicts keep insertion order: re-inserting moves an alert to the newest end
        self._shown: dict[str, int] = {}
        self._ended: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._shown)

    def __contains__(self, alert_id: object) -> bool:
        return alert_id in self._shown

    def version(self, alert_id: str) -> int | None:
        """The version shown of ``alert_id``, or None."""
        return self._shown.get(alert_id)

    def is_new(self, alert_id: str, version: int) -> bool:
        """True when (id, version) is newer than anything shown or cleared of that id."""
        return version > max(self._shown.get(alert_id, 0), self._ended.get(alert_id, 0))

    def show(self, alert_id: str, version: int) -> bool:
        """Record (id, version) as shown if it is new; returns whether it was."""
        if not self.is_new(alert_id, version):
            return False
        self._shown.pop(alert_id, None)
        self._shown[alert_id] = version
        self._ended.pop(alert_id, None)
        _trim(self._shown, self.cap)
        return True

    def clear(self, alert_id: str) -> bool:
        """Take a shown alert off the set, leaving a tombstone; false if it was not shown."""
        version = self._shown.pop(alert_id, None)
        if version is None:
            return False
        self._ended[alert_id] = version
        _trim(self._ended, self.cap)
        return True

    def newest(self) -> list[tuple[str, int]]:
        """Shown (id, version) pairs, newest first."""
        return list(reversed(self._shown.items()))

    def for_wire(self, budget_bytes: int, *, forbidden: str = "") -> list[tuple[str, int]]:
        """The newest shown pairs whose JSON fits ``budget_bytes``.

        A server caps a client frame's size as well as the seen count: with ids of up
        to 200 characters, 256 of them would not fit its frame limit. Alerts left out
        are sent again and dropped here, so trimming costs bandwidth, never a repeat
        on screen. Ids containing a character of ``forbidden`` are left out (the poll's
        ``id:version,...`` syntax cannot carry a comma).
        """
        out: list[tuple[str, int]] = []
        used = 0
        for alert_id, version in self.newest():
            if forbidden and any(c in alert_id for c in forbidden):
                continue
            # ["<id>",<version>], plus a separator; ids are escaped, so measure encoded
            cost = len(_encoder.encode(alert_id)) + len(str(version)) + 4
            if used + cost > budget_bytes:
                break
            used += cost
            out.append((alert_id, version))
        return out

    def dumps(self) -> bytes:
        """The persisted form (JSON)."""
        return _encoder.encode(
            _File(shown=list(self._shown.items()), ended=list(self._ended.items()))
        )

    @classmethod
    def loads(cls, data: bytes, cap: int = DEFAULT_CAP) -> SeenSet:
        """Parse the persisted form.

        Raises:
            msgspec.DecodeError: not JSON.
            msgspec.ValidationError: JSON of another shape.
        """
        parsed = _decoder.decode(data)
        seen = cls(cap)
        for alert_id, version in parsed.shown:
            seen._shown.pop(alert_id, None)
            seen._shown[alert_id] = version
        for alert_id, version in parsed.ended:
            seen._ended[alert_id] = version
        _trim(seen._shown, cap)
        _trim(seen._ended, cap)
        return seen


def _trim(d: dict[str, int], cap: int) -> None:
    while len(d) > cap:
        del d[next(iter(d))]


def load(path: str | os.PathLike[str], cap: int = DEFAULT_CAP) -> SeenSet:
    """The set saved at ``path``; empty (and logged) when it is missing or unreadable.

    A lost file costs repeats on screen, not alerts, so it never stops the client.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        log.info("seen file %s does not exist yet; starting with nothing shown", path)
        return SeenSet(cap)
    except OSError as exc:
        log.warning("seen file %s unreadable (%s); starting with nothing shown", path, exc)
        return SeenSet(cap)
    try:
        return SeenSet.loads(data, cap)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        log.warning("seen file %s is corrupt (%s); starting with nothing shown", path, exc)
        return SeenSet(cap)


def save(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temp file in the same directory, fsync,
    ``os.replace``. A crash leaves the old file or the new one, never half of either.

    Raises:
        OSError: the directory is not writable, the disk is full...
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class Saver:
    """Writes a :class:`SeenSet` to ``path`` after changes, off the event loop.

    One write at a time and always of the latest state: a burst of changes costs one
    or two writes, and an older snapshot can never replace a newer one.
    """

    def __init__(self, path: str | os.PathLike[str], seen: SeenSet) -> None:
        self.path = path
        self.seen = seen
        self._dirty = False
        self._task: asyncio.Task[None] | None = None

    def request(self) -> None:
        """Schedule a write of the current state (returns at once)."""
        self._dirty = True
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name="amber-relay seen file")

    async def flush(self) -> None:
        """Wait until every requested write is done."""
        if self._task is not None:
            await self._task

    async def _loop(self) -> None:
        while self._dirty:
            self._dirty = False
            data = self.seen.dumps()
            try:
                await asyncio.to_thread(save, self.path, data)
            except OSError as exc:
                log.warning("could not save the seen file %s: %s", self.path, exc)
