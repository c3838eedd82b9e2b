"""compose.yaml's services as local processes: same commands, same environment, only
host names and ports rewritten to private free ports on 127.0.0.1 (no container engine).

Sentinel's command copies deploy/sentinel.conf before starting (it rewrites its own
config); here the copy also gets the addresses rewritten and the test's short timings
appended. Every wait is bounded and waits for the process's own readiness line.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from redis.asyncio import Redis

from amber_relay.redis_server import free_port
from tests.support import ROOT, Child, ServerProcess, seconds

__all__ = ["LocalCompose", "Proc"]


class Proc(Child):
    """A child process whose merged output is kept, line by line, for readiness checks."""

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None):
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.proc = subprocess.Popen(
            self.argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        threading.Thread(target=self._read, daemon=True, name=f"{name}-output").start()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None  # stdout=PIPE
        with out:
            for raw in out:
                with self._changed:
                    self.lines.append(raw.decode(errors="replace").rstrip())
                    self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def _wait_line(self, needle: str, start: int, timeout_s: float) -> int:
        def found() -> int | None:
            for i in range(start, len(self.lines)):
                if needle in self.lines[i]:
                    return i
            return None

        with self._changed:
            self._changed.wait_for(
                lambda: found() is not None or self.proc.poll() is not None, timeout_s
            )
            at = found()
        if at is None:
            tail = "\n".join(self.lines[-20:])
            raise AssertionError(f"{self.name}: no {needle!r} (exit {self.proc.poll()}):\n{tail}")
        return at

    async def line(self, needle: str, *, start: int = 0, timeout_s: float = 20.0) -> int:
        """Index of the first output line from ``start`` on containing ``needle``."""
        return await asyncio.to_thread(self._wait_line, needle, start, seconds(timeout_s))


class LocalCompose:
    """compose.yaml read once; each service's command and env mapped to local addresses."""

    def __init__(self, tmp: Path, agencies_file: Path) -> None:
        self.tmp = tmp
        self.agencies_file = agencies_file
        text = (ROOT / "compose.yaml").read_text(encoding="utf-8")
        self.services: dict[str, dict[str, Any]] = yaml.safe_load(text)["services"]
        self._ports: dict[tuple[str, int], int] = {}
        names = "|".join(sorted(map(re.escape, self.services), key=len, reverse=True))
        self._addr = re.compile(rf"\b({names}):(\d+)\b")

    def port(self, service: str, container_port: int) -> int:
        """The local port standing for ``service:container_port``."""
        key = (service, container_port)
        if key not in self._ports:
            self._ports[key] = free_port()
        return self._ports[key]

    def local(self, value: str, service: str) -> str:
        """``svc:port`` -> ``127.0.0.1:<local>``; a bare ``:port`` bind -> this service's."""
        value = self._addr.sub(lambda m: f"127.0.0.1:{self.port(m[1], int(m[2]))}", value)
        if re.fullmatch(r":\d+", value):
            value = f"127.0.0.1:{self.port(service, int(value[1:]))}"
        return value

    def environment(self, service: str) -> dict[str, str]:
        """The service's environment with addresses made local."""
        env = self.services[service].get("environment", {})
        return {k: self.local(str(v), service) for k, v in env.items()}

    def command(self, service: str) -> list[str]:
        cmd: list[str] = [str(c) for c in self.services[service]["command"]]
        return cmd

    def redis(self, service: str) -> Proc:
        """A redis-server service: its flags with ports, --replicaof and --dir made local."""
        cmd = self.command(service)
        assert cmd[0] == "redis-server", cmd
        out: list[str] = []
        i = 0
        while i < len(cmd):
            arg = cmd[i]
            if arg == "--port":
                out += [arg, str(self.port(service, int(cmd[i + 1])))]
                i += 2
            elif arg == "--replicaof":
                host, port = cmd[i + 1], int(cmd[i + 2])
                out += [arg, "127.0.0.1", str(self.port(host, port))]
                i += 3
            else:
                out.append(arg)
                i += 1
        data = self.tmp / service
        data.mkdir(parents=True, exist_ok=True)
        # Test-only: loopback, a private dir, and no 5 s wait before a replica's full sync.
        out += ["--bind", "127.0.0.1", "--dir", str(data), "--repl-diskless-sync-delay", "0"]
        return Proc(service, out)

    def sentinel(self, service: str, *, down_after_ms: int, failover_timeout_ms: int) -> Proc:
        """A Sentinel service: deploy/sentinel.conf copied with local addresses, as its
        command copies it; the test's short failure-detection timings appended."""
        cmd = " ".join(self.command(service))
        assert "cp /deploy/sentinel.conf /data/sentinel.conf" in cmd, cmd
        assert "redis-sentinel /data/sentinel.conf" in cmd, cmd
        conf = (ROOT / "deploy" / "sentinel.conf").read_text(encoding="utf-8")
        conf = re.sub(r"(?m)^port (\d+)$", lambda m: f"port {self.port(service, int(m[1]))}", conf)
        conf = re.sub(
            r"(?m)^(sentinel monitor \S+) (\S+) (\d+)",
            lambda m: f"{m[1]} 127.0.0.1 {self.port(m[2], int(m[3]))}",
            conf,
        )
        data = self.tmp / service
        data.mkdir(parents=True, exist_ok=True)
        conf += (
            f"\nbind 127.0.0.1\ndir {data}\n"
            f"sentinel down-after-milliseconds amber {down_after_ms}\n"
            f"sentinel failover-timeout amber {failover_timeout_ms}\n"
        )
        path = data / "sentinel.conf"
        path.write_text(conf, encoding="utf-8")
        return Proc(service, ["redis-sentinel", str(path)])

    def amber(self, service: str, extra_env: dict[str, str] | None = None) -> ServerProcess:
        """An amber-relay service (the image's entry point is the CLI)."""
        cmd = self.command(service)
        args: list[str] = []
        i = 0
        while i < len(cmd):
            if cmd[i] in ("--port", "--stream-port"):
                args += [cmd[i], str(self.port(service, int(cmd[i + 1])))]
                i += 2
            elif cmd[i] == "--host":
                args += ["--host", "127.0.0.1"]
                i += 2
            else:
                args.append(cmd[i])
                i += 1
        env = {
            k: self.local(str(v), service) for k, v in self.services[service]["environment"].items()
        }
        env["AMBER_AGENCIES_FILE"] = str(self.agencies_file)
        env.update(extra_env or {})
        return ServerProcess(args, env)

    def haproxy(self, service: str) -> Proc:
        """The load balancer with its config from deploy/ and local backend addresses."""
        cmd = [c.replace("/deploy/", f"{ROOT / 'deploy'}/") for c in self.command(service)]
        env = {
            k: self.local(str(v), service) for k, v in self.services[service]["environment"].items()
        }
        # This machine caps open files at 20,000: a production maxconn cannot be raised to.
        env["LB_MAXCONN"] = "4000"
        # Short enough for a test to see a slow request cut off.
        env["LB_HTTP_REQUEST_TIMEOUT"] = "1s"
        return Proc(service, cmd, {"PATH": os.environ["PATH"], **env})


async def sentinel_view(port: int, master: str = "amber") -> dict[str, str]:
    """``SENTINEL MASTER <name>`` of one Sentinel, as text."""
    client = Redis(host="127.0.0.1", port=port, decode_responses=True)
    try:
        raw: Any = await client.execute_command(  # type: ignore[no-untyped-call]
            "SENTINEL", "MASTER", master
        )
    finally:
        await client.aclose()
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    return {str(raw[i]): str(raw[i + 1]) for i in range(0, len(raw), 2)}
