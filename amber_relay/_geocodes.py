"""CAP county geocodes other than SAME, read as SAME codes (pure).

NWS messages name counties three ways: ``SAME`` (``048029``, what IPAWS requires),
``FIPS6`` (the same six digits) and ``UGC`` county codes (``TXC029``: state postal
code, ``C``, county FIPS). All three resolve to the same outline; UGC *zone* codes
(``TXZ055``, NWS forecast and marine zones) need zone outlines this project does not
ship, so they are not resolved.
"""

from __future__ import annotations

import re

__all__ = ["as_same"]

# Postal code -> state FIPS: the 50 states, DC and the inhabited territories.
_STATE_FIPS = {
    "AL": "01", "AK": "02", "AZ": "04", "AR": "05", "CA": "06", "CO": "08", "CT": "09",
    "DE": "10", "DC": "11", "FL": "12", "GA": "13", "HI": "15", "ID": "16", "IL": "17",
    "IN": "18", "IA": "19", "KS": "20", "KY": "21", "LA": "22", "ME": "23", "MD": "24",
    "MA": "25", "MI": "26", "MN": "27", "MS": "28", "MO": "29", "MT": "30", "NE": "31",
    "NV": "32", "NH": "33", "NJ": "34", "NM": "35", "NY": "36", "NC": "37", "ND": "38",
    "OH": "39", "OK": "40", "OR": "41", "PA": "42", "RI": "44", "SC": "45", "SD": "46",
    "TN": "47", "TX": "48", "UT": "49", "VT": "50", "VA": "51", "WA": "53", "WV": "54",
    "WI": "55", "WY": "56", "AS": "60", "GU": "66", "MP": "69", "PR": "72", "VI": "78",
}  # fmt: skip
_FIPS6 = re.compile(r"[0-9]{6}")
_UGC_COUNTY = re.compile(r"([A-Z]{2})C([0-9]{3})")


def as_same(name: str, value: str) -> str | None:
    """The SAME code a ``FIPS6`` or ``UGC`` county geocode names, else ``None``.

    ``name`` is the geocode's ``valueName`` (any case); ``None`` for other names,
    UGC zone codes, unknown states and malformed values: the caller warns.
    """
    kind = name.strip().upper()
    value = value.strip()
    if kind == "FIPS6":
        return value if _FIPS6.fullmatch(value) else None
    if kind == "UGC":
        m = _UGC_COUNTY.fullmatch(value.upper())
        if m is not None and m[1] in _STATE_FIPS:
            return "0" + _STATE_FIPS[m[1]] + m[2]
    return None
