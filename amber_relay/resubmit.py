"""What differs between two submissions under one CAP key (sender, identifier, sent).

CAP names a message by that triple: the same triple with other content is not a replay
but a changed message sent under a used name, which the hook refuses (409
``identifier_reused``) instead of answering "idempotent replay" and losing the change.
Pure: two :class:`~amber_relay.store.Submission` in, the names of what differs out.
"""

from __future__ import annotations

import msgspec

from .store import Submission

__all__ = ["differences"]

# Parts that are not content: who and when it was received, and the derived notes.
_IGNORED = frozenset({"id", "version", "sent"})


def _flat(obj: object, prefix: str, out: dict[str, object]) -> None:
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not prefix and key in _IGNORED:
                continue
            _flat(value, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(obj, list) and prefix == "infos":
        for i, value in enumerate(obj):
            _flat(value, f"{prefix}[{i}]", out)
    else:
        out[prefix] = obj


def _fields(sub: Submission) -> dict[str, object]:
    out: dict[str, object] = {"msgType": sub.kind, "note": sub.note}
    rec = sub.record
    if rec is None:
        return out
    out["status"] = rec.status
    out["expires"] = rec.expires_ts
    out["area"] = (rec.polygons, rec.circles, rec.same)
    out["photos"] = msgspec.to_builtins(rec.pending_photos)
    _flat(msgspec.to_builtins(rec.content), "", out)
    return out


def differences(old: Submission, new: Submission) -> list[str]:
    """Names of the parts whose content differs (``[]`` when the two are the same),
    e.g. ``["expires", "infos[0].headline", "area"]``; at most 12 names."""
    a, b = _fields(old), _fields(new)
    keys = dict.fromkeys([*a, *b])
    names = [k for k in keys if msgspec.to_builtins(a.get(k)) != msgspec.to_builtins(b.get(k))]
    return names[:12]
