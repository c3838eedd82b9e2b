"""The agencies file: who may post alerts, with which secret, for which states.

```toml
[agencies.txdps]
secret = "..."            # HMAC-SHA256 key
jurisdiction = ["48"]     # 2-digit state FIPS codes, or ["US"]
```
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .errors import AmberError

__all__ = ["Agency", "load_agencies", "namespaced_id"]

_STATE = re.compile(r"^[0-9]{2}$")
# No "/" (it separates the agency from the identifier in alert ids) and no ":" or ","
# (the poll's seen=id:version,... syntax); short, so a hello's seen list stays small.
_AGENCY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")


def namespaced_id(agency_id: str, identifier: str) -> str:
    """The public id of an agency's alert: ``<agency>/<identifier>``.

    Alert ids are namespaced by agency so no agency can squat, shadow or cancel
    another's alert by choosing the same identifier.
    """
    return f"{agency_id}/{identifier}"


@dataclass(frozen=True, slots=True)
class Agency:
    id: str
    secret: str
    jurisdiction: tuple[str, ...]
    name: str | None = None


def load_agencies(path: str | Path | None) -> dict[str, Agency]:
    """Read and check the agencies file; ``None`` gives no agencies.

    Raises:
        AmberError: the file is missing, not TOML, or an entry is incomplete; the
            reason names the agency and the field.
    """
    if path is None:
        return {}
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise AmberError(f"agencies file {path}: {exc}", code="bad_agencies_file") from None
    table = data.get("agencies", {})
    if not isinstance(table, dict):
        raise AmberError(
            f"agencies file {path}: [agencies] must be a table", code="bad_agencies_file"
        )
    out: dict[str, Agency] = {}
    for agency_id, entry in table.items():
        where = f"agencies file {path}: agencies.{agency_id}"
        if not _AGENCY_ID.fullmatch(agency_id):
            raise AmberError(
                f"{where}: an agency id is 1-32 letters, digits, '_', '.' or '-'"
                " (it prefixes the agency's alert ids)",
                code="bad_agencies_file",
            )
        if not isinstance(entry, dict):
            raise AmberError(f"{where} must be a table", code="bad_agencies_file")
        secret = entry.get("secret")
        if not isinstance(secret, str) or len(secret) < 16:
            raise AmberError(
                f"{where}.secret must be a string of 16+ characters", code="bad_agencies_file"
            )
        juris = entry.get("jurisdiction")
        if (
            not isinstance(juris, list)
            or not juris
            or not all(isinstance(j, str) and (j == "US" or _STATE.fullmatch(j)) for j in juris)
        ):
            raise AmberError(
                f"{where}.jurisdiction must be a non-empty list of 2-digit state FIPS"
                ' codes or ["US"]',
                code="bad_agencies_file",
            )
        name = entry.get("name")
        out[agency_id] = Agency(
            agency_id, secret, tuple(juris), name if isinstance(name, str) else None
        )
    return out
