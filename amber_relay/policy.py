"""What this deployment publishes: accepted events, test events, marine codes, clock skew.

Pure rules applied by :func:`amber_relay.ingest.validate` to JSON and CAP alerts alike.
An AMBER deployment publishes Child Abduction Emergencies (SAME ``CAE``) only, unless
``Settings.accepted_event_codes`` says otherwise; nothing here infers an event from free
text.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import Invalid
from .model import Status

__all__ = [
    "TEST_EVENT_CODES",
    "check_event",
    "check_sent",
    "is_marine_same",
    "split_marine_same",
]

TEST_EVENT_CODES = frozenset({"RMT", "RWT", "DMO", "NPT"})
"""Required Monthly/Weekly Test, Practice/Demo Warning, National Periodic Test."""

# SAME state parts that name marine areas, not states (NWS marine zone codes): no app
# user is at sea, and the shipped state data has no polygon for them.
_MARINE_STATE_PARTS = frozenset(
    {"57", "58", "59", "61", "65", "73", "75", "77", *(str(n) for n in range(91, 99))}
)


def check_event(
    code: str, event: str, status: Status, accepted: Sequence[str]
) -> tuple[Status, list[str]]:
    """The status to store for an alert of SAME event ``code``, and warnings.

    A test or demonstration event (RMT, RWT, DMO, NPT) accepted by the settings is
    stored with status ``test`` whatever it claims, so it never reaches the public.

    Raises:
        Invalid: ``event_not_accepted``: the code is not in ``accepted`` (``*`` = all);
            the reason names the event and the accepted list.
    """
    if "*" not in accepted and code not in accepted:
        raise Invalid(
            f"event {event[:80]!r} (SAME event code {code}) is not accepted: this deployment"
            f" publishes {', '.join(accepted) or 'no event'} only (setting accepted_event_codes)",
            code="event_not_accepted",
        )
    if code in TEST_EVENT_CODES and status != "test":
        return "test", [
            f"event code {code} is a test or demonstration event: stored as status test"
            f" (not {status}), never shown to the public"
        ]
    return status, []


def check_sent(sent: str, sent_ts: float, now: float, max_skew_s: int) -> None:
    """Refuse a ``sent`` time further ahead of ``now`` than ``max_skew_s``.

    Raises:
        Invalid: ``sent_in_future``, naming the skew.
    """
    ahead = sent_ts - now
    if ahead <= max_skew_s:
        return
    hours, minutes = divmod(round(ahead / 60), 60)
    skew = f"{hours} h {minutes} min" if hours else f"{minutes} min"
    raise Invalid(
        f"sent {sent} is {skew} ahead of this server's clock (limit {max_skew_s} s):"
        " is its UTC offset right? (a local time written with the wrong offset is the"
        " usual cause)",
        code="sent_in_future",
    )


def is_marine_same(code: str) -> bool:
    """Whether a SAME code (PSSCCC) names a marine zone (state part 57-59, 61, 65, 73,
    75, 77 or 91-98) rather than a county."""
    return code[1:3] in _MARINE_STATE_PARTS


def split_marine_same(codes: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(land codes, marine codes)`` of a list of SAME codes, order kept."""
    land = [c for c in codes if not is_marine_same(c)]
    marine = [c for c in codes if is_marine_same(c)]
    return land, marine
