"""compose.yaml runs what this repository builds (no Docker engine here: checked statically,
and the same commands run as real processes in tests/test_compose_processes.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from amber_relay.cli import _parser
from amber_relay.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def load() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    return data


AMBER = ("worker", "broadcaster-1", "broadcaster-2")


def test_compose_runs_redis_ha_a_worker_two_broadcasters_and_a_load_balancer() -> None:
    """Primary and replica with AOF, three Sentinels, a worker, two serve replicas, HAProxy."""
    services = load()["services"]
    for name in ("redis-primary", "redis-replica"):
        cmd = services[name]["command"]
        assert cmd[cmd.index("--appendonly") + 1] == "yes"
    assert services["redis-replica"]["command"][-3:] == ["--replicaof", "redis-primary", "6379"]
    sentinels = [n for n, s in services.items() if "redis-sentinel" in " ".join(s["command"])]
    assert len(sentinels) == 3
    roles = sorted(services[n]["command"][0] for n in AMBER)
    assert roles == ["serve", "serve", "worker"]
    for name in AMBER:
        assert services[name]["build"] == "."
        env = services[name]["environment"]
        assert env["AMBER_REDIS_SENTINELS"].count(":26379") == 3
        assert "AMBER_REDIS_URL" not in env
    assert services["lb"]["command"][0] == "haproxy"


def test_compose_commands_and_env_are_valid() -> None:
    """Each amber command parses with the real CLI and each AMBER_* variable names a setting."""
    services = load()["services"]
    for name in AMBER:
        service = services[name]
        _parser().parse_args(service["command"])
        env = {k: str(v) for k, v in service["environment"].items()}
        Settings.from_env(env)


def test_haproxy_config_is_valid_and_checks_readiness() -> None:
    """deploy/haproxy.cfg passes ``haproxy -c`` and health-checks /readyz with socket timeouts."""
    cfg = ROOT / "deploy" / "haproxy.cfg"
    text = cfg.read_text(encoding="utf-8")
    assert "option httpchk GET /readyz" in text
    assert "timeout tunnel" in text and "timeout http-request" in text
    assert '"code":"no_ready_replica"' in text
    env = {k: str(v) for k, v in load()["services"]["lb"]["environment"].items()}
    env = {
        k: v.replace("broadcaster-1", "127.0.0.1").replace("broadcaster-2", "127.0.0.1")
        for k, v in env.items()
    }
    env["LB_MAXCONN"] = "1000"
    check = subprocess.run(
        ["haproxy", "-c", "-f", str(cfg)],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_dockerfile_installs_the_package_and_runs_the_cli() -> None:
    """The image installs this repository and its entry point is the amber-relay CLI."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "pip install ." in text
    assert 'ENTRYPOINT ["amber-relay"]' in text
    for package in ("amber_relay", "broadcaster", "workers", "clients"):
        assert f"COPY {package} " in text
    assert os.path.exists(ROOT / "pyproject.toml")
