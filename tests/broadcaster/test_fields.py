"""problem+json's ``field``: the input a refusal names, pulled from its detail."""

from __future__ import annotations

import pytest

from broadcaster._fields import field_of


@pytest.mark.parametrize(
    ("reason", "field"),
    [
        ("Expected `int | null`, got `str` - at `$.children[0].age`", "children[0].age"),
        ("Object missing required field `lon` - at `$.area.circles[0]`", "area.circles[0].lon"),
        ("Object missing required field `identifier`", "identifier"),
        ("Object contains unknown field `foo`", "foo"),
        ("expires 2026-01-01T00:00:00-06:00 is in the past", "expires"),
        ("sent: 'x' is not an RFC 3339 time", "sent"),
        ("area.circles[0].radius_km 5000 exceeds 1000.0 km", "area.circles[0].radius_km"),
        ("area.geometry polygon 1 ring 0: 3 positions", "area.geometry"),
        ("SAME 040109 is in Oklahoma (40), outside", "area.same"),
        ("unknown SAME code(s) 048999: no such state or county", "area.same"),
        ("area needs at least one of geometry, circles or same", "area"),
        ("photos[1]: give exactly one of url or data", "photos[1]"),
        ("malformed JSON: truncated", None),
    ],
)
def test_field_of_names_the_input(reason: str, field: str | None) -> None:
    """Each kind of refusal maps to the JSON path of the input it is about."""
    assert field_of(reason) == field
