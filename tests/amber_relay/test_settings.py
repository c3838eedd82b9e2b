"""Tests of amber_relay.settings: the frozen Settings built from AMBER_* env and overrides."""

from __future__ import annotations

import dataclasses

import pytest

from amber_relay.settings import Settings


def test_settings_from_env_casts_ints_floats_and_strings() -> None:
    """AMBER_* values are cast to their field's type: int, float, or kept as str."""
    s = Settings.from_env(
        {
            "AMBER_PORT": "9000",
            "AMBER_MAX_RADIUS_KM": "250.5",
            "AMBER_WORKER_POLL_DELAY_S": "0.05",
            "AMBER_REDIS_URL": "redis://redis:6379/0",
            "AMBER_AGENCIES_FILE": "/etc/amber/agencies.toml",
        }
    )
    assert s.port == 9000 and type(s.port) is int
    assert s.max_radius_km == 250.5 and type(s.max_radius_km) is float
    assert s.worker_poll_delay_s == 0.05
    assert s.redis_url == "redis://redis:6379/0"
    assert s.agencies_file == "/etc/amber/agencies.toml"
    assert s.stream_port == 8001  # untouched default


def test_settings_from_env_float_field_accepts_an_integer_string() -> None:
    """A float field given "2" becomes 2.0."""
    assert Settings.from_env({"AMBER_MAX_RADIUS_KM": "2"}).max_radius_km == 2.0


def test_settings_from_env_empty_gives_defaults() -> None:
    """No AMBER_* variables give the defaults."""
    assert Settings.from_env({}) == Settings()


def test_settings_from_env_unknown_amber_variable_raises() -> None:
    """A typo such as AMBER_REDIS_UR raises, naming the variable, instead of being ignored."""
    with pytest.raises(ValueError, match="AMBER_REDIS_UR names no setting"):
        Settings.from_env({"AMBER_REDIS_UR": "redis://x"})


def test_settings_from_env_ignores_non_amber_variables() -> None:
    """Variables without the AMBER_ prefix (PATH, lower-case amber_port, REDIS_URL) are ignored."""
    s = Settings.from_env(
        {"PATH": "/usr/bin", "amber_port": "1", "REDIS_URL": "redis://x", "XAMBER_PORT": "2"}
    )
    assert s == Settings()


def test_settings_from_env_overrides_win() -> None:
    """Keyword overrides beat the environment; None overrides leave the env value."""
    env = {"AMBER_PORT": "9000", "AMBER_HOST": "0.0.0.0"}
    s = Settings.from_env(env, port=9100, host=None)
    assert s.port == 9100
    assert s.host == "0.0.0.0"
    assert Settings.from_env({}, max_vertices=10).max_vertices == 10


@pytest.mark.parametrize(
    ("key", "raw", "kind"),
    [
        ("AMBER_PORT", "80a", "int"),
        ("AMBER_PORT", "", "int"),
        ("AMBER_MAX_RADIUS_KM", "far", "float"),
    ],
)
def test_settings_from_env_bad_value_raises_naming_the_variable(
    key: str, raw: str, kind: str
) -> None:
    """A value that does not parse as its field's type raises, naming variable, value and type."""
    with pytest.raises(ValueError) as e:
        Settings.from_env({key: raw})
    assert str(e.value) == f"{key}={raw!r} is not a valid {kind}"


def test_settings_is_frozen() -> None:
    """Settings cannot be changed in place; replace() gives a changed copy."""
    s = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.port = 1  # type: ignore[misc]
    t = s.replace(port=1)
    assert t.port == 1 and s.port == 8000
    assert hash(s) == hash(Settings())


def test_settings_from_env_reads_event_codes_as_a_tuple() -> None:
    """AMBER_ACCEPTED_EVENT_CODES is a comma-separated list; the default is CAE alone."""
    assert Settings().accepted_event_codes == ("CAE",)
    env = {"AMBER_ACCEPTED_EVENT_CODES": "CAE, CEM,", "AMBER_MAX_CLOCK_SKEW_S": "60"}
    s = Settings.from_env(env)
    assert s.accepted_event_codes == ("CAE", "CEM")
    assert s.max_clock_skew_s == 60
