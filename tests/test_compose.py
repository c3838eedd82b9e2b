"""compose.yaml runs what this repository builds (no Docker engine here: checked statically,
and the same commands run as real processes in tests/broadcaster/test_processes.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from amber_relay.cli import _parser
from amber_relay.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def load() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    return data


def test_compose_runs_redis_with_aof_a_worker_and_two_broadcasters() -> None:
    """Redis has AOF on; one worker; two serve replicas; each amber service builds the repo."""
    services = load()["services"]
    assert "--appendonly" in services["redis"]["command"]
    assert (
        services["redis"]["command"][services["redis"]["command"].index("--appendonly") + 1]
        == "yes"
    )
    roles = [s["command"][0] for name, s in services.items() if name != "redis"]
    assert sorted(roles) == ["serve", "serve", "worker"]
    for name, service in services.items():
        if name != "redis":
            assert service["build"] == "."


def test_compose_commands_and_env_are_valid() -> None:
    """Each command parses with the real CLI and each AMBER_* variable names a setting."""
    for name, service in load()["services"].items():
        if name == "redis":
            continue
        _parser().parse_args(service["command"])
        env = {k: str(v) for k, v in service["environment"].items()}
        Settings.from_env(env)


def test_dockerfile_installs_the_package_and_runs_the_cli() -> None:
    """The image installs this repository and its entry point is the amber-relay CLI."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "pip install ." in text
    assert 'ENTRYPOINT ["amber-relay"]' in text
    for package in ("amber_relay", "broadcaster", "workers", "clients"):
        assert f"COPY {package} " in text
    assert os.path.exists(ROOT / "pyproject.toml")
