"""County codes that changed between boundary vintages, and what to tell an agency.

The shipped data (docs/geodata.md) has every code of the Census 2016 county file at
1:500k, plus the codes created since (Connecticut's planning regions, Alaska's Chugach
and Copper River) from the Census 2023 file at 1:10m, widened. Each code resolves to
its own area; a retired, renamed or coarse one gets a warning that says so.
"""

from __future__ import annotations

__all__ = ["RENAMED", "RETIRED", "coarse_warning", "renamed_warning", "retired_warning"]

RENAMED = {
    "46113": ("46102", "Shannon County, SD, was renamed Oglala Lakota County (46102) in 2015"),
    "02270": (
        "02158",
        "Wade Hampton Census Area, AK, was renamed Kusilvak Census Area (02158) in 2015",
    ),
}
"""Old code -> (new code, what happened). The area did not change."""

_CT = (
    "Connecticut's 8 counties stopped being county equivalents in 2022, when the Census"
    " Bureau adopted its 9 planning regions (09110-09190)"
)
RETIRED = {
    "02261": "Valdez-Cordova Census Area, AK, was split in 2019 into Chugach (02063) and"
    " Copper River (02066)",
    **{f"090{c:02d}": _CT for c in range(1, 16, 2)},
}
"""Retired code -> what happened. Each still resolves to its own (former) outline."""


def retired_warning(code: str, fips: str, name: str) -> str:
    return (
        f"SAME {code}: {name} ({fips}) is a retired code: {RETIRED[fips]}; alerting the"
        " area it had (Census 2016 outline, 1:500k)"
    )


def renamed_warning(code: str, fips: str) -> str:
    new, why = RENAMED[fips]
    return f"SAME {code}: {fips} is a retired code: {why}; alerting {new}, the same area"


def coarse_warning(code: str, fips: str, name: str, widen_m: float, within: str) -> str:
    return (
        f"SAME {code}: {name} ({fips}) is newer than the shipped 1:500k outlines (2016):"
        f" its lines inside {within} are from the Census 2023 1:10m file, widened by"
        f" {widen_m / 1000:g} km so that nobody inside is missed, so up to"
        f" {widen_m / 1000:g} km of the neighbouring area(s) may be alerted too; its"
        f" outer lines are those of {within} at 1:500k"
    )
