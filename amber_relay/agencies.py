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

__all__ = ["Agency", "load_agencies"]

_STATE = re.compile(r"^[0-9]{2}$")


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
