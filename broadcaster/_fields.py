"""Which field of an alert a refusal names, for problem+json's ``field`` member.

Refusals already name the field in their ``detail`` (msgspec's ``at `$.path```, or a
leading label such as ``area.circles[0].radius_km``); this pulls it out so a form can
put the message next to the input. ``None`` when no field is named.
"""

from __future__ import annotations

import re

__all__ = ["field_of"]

_AT = re.compile(r"- at `\$\.?([^`]*)`")
_NAMED = re.compile(r"(?:missing required|unknown) field `([^`]+)`")
_LEADING = re.compile(
    r"^(expires|sent|photos(?:\[\d+\])?|(?:children|suspects)\[\d+\]\.photos"
    r"|area(?:\.(?:geometry|circles|same)(?:\[\d+\])?(?:\.radius_km)?)?)(?=[\s:.]|$)"
)


def field_of(reason: str) -> str | None:
    """The dotted JSON path of the field ``reason`` names (``children[0].age``), if any."""
    at = _AT.search(reason)
    named = _NAMED.search(reason)
    if at is not None or named is not None:
        parts = [p for p in ((at.group(1) if at else ""), (named.group(1) if named else "")) if p]
        return ".".join(parts) or None
    if reason.startswith(("SAME ", "unknown SAME code")):
        return "area.same"
    lead = _LEADING.match(reason)
    return lead.group(1) if lead else None
