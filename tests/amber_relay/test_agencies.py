"""Tests of amber_relay.agencies: reading and checking the agencies TOML file."""

from __future__ import annotations

from pathlib import Path

import pytest

from amber_relay.agencies import Agency, load_agencies, namespaced_id
from amber_relay.errors import AmberError

SECRET = "0123456789abcdef"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agencies.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_agencies_good_file(tmp_path: Path) -> None:
    """A good file gives one Agency per table, with its secret, jurisdiction and name."""
    path = write(
        tmp_path,
        f'[agencies.txdps]\nsecret = "{SECRET}"\njurisdiction = ["48"]\n'
        f'name = "Texas DPS"\n\n'
        f'[agencies.fourstates]\nsecret = "{SECRET}xyz"\njurisdiction = ["40", "05", "22"]\n\n'
        f'[agencies.ncmec]\nsecret = "{SECRET}"\njurisdiction = ["US"]\n',
    )
    agencies = load_agencies(path)
    assert agencies == {
        "txdps": Agency("txdps", SECRET, ("48",), "Texas DPS"),
        "fourstates": Agency("fourstates", SECRET + "xyz", ("40", "05", "22"), None),
        "ncmec": Agency("ncmec", SECRET, ("US",), None),
    }
    assert load_agencies(str(path)) == agencies


def test_load_agencies_none_gives_no_agencies() -> None:
    """No file configured means no agency may post."""
    assert load_agencies(None) == {}


def test_load_agencies_missing_file_names_it(tmp_path: Path) -> None:
    """A missing file is an AmberError (bad_agencies_file) naming the path."""
    path = tmp_path / "nope.toml"
    with pytest.raises(AmberError) as e:
        load_agencies(path)
    assert e.value.code == "bad_agencies_file"
    assert str(path) in e.value.reason


def test_load_agencies_bad_toml_names_file_and_line(tmp_path: Path) -> None:
    """A file that is not TOML is an AmberError naming the file and where parsing failed."""
    path = write(tmp_path, f'[agencies.txdps]\nsecret = "{SECRET}\njurisdiction = ["48"]\n')
    with pytest.raises(AmberError) as e:
        load_agencies(path)
    assert e.value.code == "bad_agencies_file"
    assert str(path) in e.value.reason and "line 2" in e.value.reason


@pytest.mark.parametrize(
    "entry",
    ['secret = "short"', "secret = 1234567890123456789", 'secrets = "0123456789abcdef"'],
    ids=["short", "not-a-string", "missing"],
)
def test_load_agencies_bad_secret_names_agency_and_field(tmp_path: Path, entry: str) -> None:
    """A short, non-string or missing secret is an AmberError naming agencies.<id>.secret."""
    path = write(tmp_path, f'[agencies.txdps]\n{entry}\njurisdiction = ["48"]\n')
    with pytest.raises(AmberError) as e:
        load_agencies(path)
    assert e.value.code == "bad_agencies_file"
    assert "agencies.txdps.secret" in e.value.reason
    assert "16+" in e.value.reason


@pytest.mark.parametrize(
    "juris", ['["TX"]', "[]", '"48"', "[48]", '["480"]', '["us"]', '["48", "Texas"]', None]
)
def test_load_agencies_bad_jurisdiction_names_agency_and_field(
    tmp_path: Path, juris: str | None
) -> None:
    """A jurisdiction that is not a non-empty list of 2-digit FIPS codes or ["US"] is refused."""
    line = "" if juris is None else f"jurisdiction = {juris}\n"
    path = write(tmp_path, f'[agencies.okdps]\nsecret = "{SECRET}"\n{line}')
    with pytest.raises(AmberError) as e:
        load_agencies(path)
    assert e.value.code == "bad_agencies_file"
    assert "agencies.okdps.jurisdiction" in e.value.reason


def test_load_agencies_entry_not_a_table_names_agency(tmp_path: Path) -> None:
    """An agency that is not a table, or [agencies] that is not one, is refused."""
    with pytest.raises(AmberError, match="agencies.txdps must be a table"):
        load_agencies(write(tmp_path, '[agencies]\ntxdps = "x"\n'))
    with pytest.raises(AmberError, match=r"\[agencies\] must be a table"):
        load_agencies(write(tmp_path, "agencies = 3\n"))


def test_load_agencies_non_utf8_file_is_amber_error(tmp_path: Path) -> None:
    """A file that is not UTF-8 is an AmberError naming the file."""
    path = tmp_path / "agencies.toml"
    path.write_bytes(b'[agencies.txdps]\nsecret = "\xff\xfe0123456789abcdef"\n')
    with pytest.raises(AmberError, match="agencies.toml"):
        load_agencies(path)


def test_load_agencies_jurisdiction_with_trailing_newline_is_refused(tmp_path: Path) -> None:
    """A jurisdiction code with a trailing newline is not a 2-digit FIPS code."""
    path = write(tmp_path, f'[agencies.txdps]\nsecret = "{SECRET}"\njurisdiction = ["48\\n"]\n')
    with pytest.raises(AmberError, match="jurisdiction"):
        load_agencies(path)


@pytest.mark.parametrize(
    "agency_id", ['"tx/dps"', '"tx:dps"', '"tx,dps"', '"-tx"', '"a b"', "a" * 33]
)
def test_agency_ids_that_would_make_alert_ids_ambiguous_are_refused(
    tmp_path: Path, agency_id: str
) -> None:
    """An agency id with '/', ':', ',', spaces or over 32 characters is refused, naming it."""
    path = write(tmp_path, f'[agencies.{agency_id}]\nsecret = "{SECRET}"\njurisdiction = ["48"]\n')
    with pytest.raises(AmberError) as e:
        load_agencies(path)
    assert "agency id" in e.value.reason


def test_alert_ids_are_namespaced_by_agency() -> None:
    """The public id of an agency's alert is ``<agency>/<identifier>``."""
    assert namespaced_id("txdps", "TX-2026-0042") == "txdps/TX-2026-0042"
