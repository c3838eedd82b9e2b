"""The SAME event code of a CAP message (IPAWS profile: one per info, the same in all).

Private helper of :mod:`amber_relay.cap`. Only ``eventCode`` entries named ``SAME`` are
read; nothing is inferred from the free-text ``event``.
"""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element

from ._cap_area import children, req_text
from .errors import Invalid

__all__ = ["common_event_code", "info_event_code"]

_SAME_EVENT = re.compile(r"[A-Z]{3}")


def info_event_code(info: Element, where: str) -> str | None:
    """The SAME event code of an info (IPAWS: exactly one), or ``None``."""
    codes: dict[str, None] = {}
    for k, el in enumerate(children(info, "eventCode")):
        ewhere = f"{where} eventCode {k}"
        if req_text(el, "valueName", ewhere) != "SAME":
            continue
        value = req_text(el, "value", ewhere)
        if _SAME_EVENT.fullmatch(value) is None:
            raise Invalid(
                f"{ewhere}: SAME event code {value[:40]!r} is not 3 capital letters (e.g. CAE)",
                code="cap_bad_event_code",
            )
        codes.setdefault(value)
    if len(codes) > 1:
        raise Invalid(
            f"{where} has SAME event codes {', '.join(codes)}; the IPAWS profile allows one",
            code="cap_bad_event_code",
        )
    return next(iter(codes), None)


def common_event_code(infos: list[tuple[int, str | None, str]], cancel: bool) -> str:
    """The one SAME event code of all infos (IPAWS: the same in every info)."""
    codes = {code: i for i, code, _ in infos if code is not None}
    if len(codes) > 1:
        where = ", ".join(f"info {i} {code}" for code, i in codes.items())
        raise Invalid(
            f"infos carry different SAME event codes ({where}); the IPAWS profile needs one"
            " event per message",
            code="cap_bad_event_code",
        )
    if codes:
        return str(next(iter(codes)))
    if cancel:
        return "CAE"  # a Cancel's content is never published; it is not refused either
    first, _, event = infos[0]
    raise Invalid(
        f"info {first}: no <eventCode> with <valueName>SAME</valueName>; this hook"
        f" needs the SAME event code (CAE for a Child Abduction Emergency) and infers none"
        f" from <event> {event[:80]!r}",
        code="event_code_missing",
    )
