"""The stream's per-socket rates (GCRA) and per-address connection cap, as pure objects."""

from __future__ import annotations

import pytest

from broadcaster._limits import AddressCap, Rate


def test_rate_allows_the_burst_then_the_rate() -> None:
    """A burst of frames at one instant passes, the next is over; time refills the bucket
    at the configured rate."""
    rate = Rate("ack", per_s=10, burst=5)
    due, now = 0.0, 100.0
    for _ in range(5):
        due = rate.take(due, now)
        assert due > 0
    assert rate.take(due, now) == -1.0
    assert rate.take(due, now + 0.1) > 0  # one step (0.1 s) later: one more frame
    steady = due
    for i in range(1, 50):  # exactly at the rate: never over
        steady = rate.take(steady, now + 0.1 * (i + 5))
        assert steady > 0


def test_rate_refuses_nonsense_settings() -> None:
    """A rate of 0 or a burst below 1 is a configuration error, said at start-up."""
    with pytest.raises(ValueError, match="move rate"):
        Rate("move", per_s=0, burst=5)
    with pytest.raises(ValueError, match="burst"):
        Rate("move", per_s=1, burst=0)


def test_address_cap_counts_per_address_and_frees_places() -> None:
    """At most ``limit`` connections per address; other addresses are independent; a
    release frees a place and an address with none left is forgotten."""
    cap = AddressCap(2)
    a1, a2 = cap.admit("10.0.0.1"), cap.admit("10.0.0.1")
    assert a1 is not None and a2 is not None
    assert cap.admit("10.0.0.1") is None
    assert cap.refused == 1
    assert cap.admit("10.0.0.2") is not None
    cap.release(a1)
    again = cap.admit("10.0.0.1")
    assert again is not None
    cap.release(a2)
    cap.release(again)
    assert "10.0.0.1" not in cap.peers


def test_address_cap_of_zero_is_no_cap() -> None:
    """A cap of 0 admits any number of connections from one address (behind a balancer)."""
    cap = AddressCap(0)
    peers = [cap.admit("10.0.0.1") for _ in range(5000)]
    assert all(p is not None for p in peers)
    assert cap.refused == 0
