"""Per-socket frame rates and the per-address connection cap of the stream (no I/O)."""

from __future__ import annotations

__all__ = ["AddressCap", "Peer", "Rate"]


class Rate:
    """One kind of client frame's rate limit: GCRA, a token bucket kept per socket as
    one float (the time its bucket is next empty, "due").

    ``per_s`` frames a second are allowed after a burst of ``burst`` back to back.
    """

    __slots__ = ("reason", "slack", "step")

    def __init__(self, what: str, per_s: float, burst: int) -> None:
        if not per_s > 0 or burst < 1:
            raise ValueError(f"the {what} rate must be > 0 per second with a burst >= 1")
        self.step = 1.0 / per_s
        self.slack = (burst - 1) * self.step
        self.reason = f"more than {per_s:g} {what} frames per second; slow down"

    def take(self, due: float, now: float) -> float:
        """The new due time after one more frame at ``now``; -1 when over the rate."""
        if due < now:
            return now + self.step
        if due - now > self.slack:
            return -1.0
        return due + self.step


class Peer:
    """Open connections from one source address (one object shared by them)."""

    __slots__ = ("addr", "n")

    def __init__(self, addr: str) -> None:
        self.addr = addr
        self.n = 0


class AddressCap:
    """At most ``limit`` open connections per source address (in this process); 0: no cap."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.peers: dict[str, Peer] = {}
        self.refused = 0
        """Connections refused so far."""

    def admit(self, addr: str) -> Peer | None:
        """Count a new connection from ``addr``; None when the address is at its cap."""
        peer = self.peers.get(addr)
        if peer is None:
            peer = Peer(addr)
        if self.limit and peer.n >= self.limit:
            self.refused += 1
            return None
        self.peers[addr] = peer
        peer.n += 1
        return peer

    def release(self, peer: Peer) -> None:
        """Forget one connection of ``peer`` (exactly once per admitted connection)."""
        peer.n -= 1
        if peer.n <= 0:
            self.peers.pop(peer.addr, None)
