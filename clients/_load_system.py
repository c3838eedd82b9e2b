"""The systems a load test measures, as child processes it owns and always cleans up.

- :class:`AmberTarget`: a private Redis, ``amber-relay worker`` and ``amber-relay serve
  --processes P`` (or an existing deployment given by URLs and an agency's secret).
- :class:`BaselineTarget`: ``benchmarks/raw_floor.py`` or ``benchmarks/naive_starlette.py``.

Every child runs in its own session (so its whole process group can be signalled,
the serve supervisor's children included) and gets a parent-death signal, so a load
test killed outright does not leave servers behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import resource
import secrets
import signal
import socket
import sys
import time
from collections import deque
from pathlib import Path
from typing import IO, Any

import httpx

from amber_relay.redis_server import RedisServer
from amber_relay.signing import signature_header

__all__ = ["AmberTarget", "BaselineTarget", "Child", "Target", "files_limit", "rss_kb"]

ROOT = Path(__file__).resolve().parent.parent
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: SIGINT when the parent dies (SIGINT lets
    # the serve supervisor stop its own children before it exits), and the open-files
    # limit raised to its hard maximum (each socket is a file).
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGINT)
    with contextlib.suppress(Exception):
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def files_limit() -> int:
    """The open-files limit a child gets (the hard limit)."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def _open_log(path: Path) -> IO[str]:
    # Kept open for the child's lifetime; closed in Child.stop.
    return open(path, "w", encoding="utf-8")


def rss_kb(pid: int) -> int | None:
    """VmRSS of a process in KiB, or None if it is not readable (gone, other host)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


class Child:
    """A child process: JSON ``event`` lines from its stdout, other output to a log file."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, log: IO[str]) -> None:
        self.name = name
        self.proc = proc
        self.log = log
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.tail: deque[str] = deque(maxlen=40)
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(
        cls, name: str, argv: list[str], *, env: dict[str, str] | None = None, log_dir: Path
    ) -> Child:
        """Start ``argv`` with stdin and stdout piped, stderr to ``log_dir/<name>.log``."""
        log = _open_log(log_dir / f"{name}.log")
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            env={**os.environ, **(env or {})},
            cwd=str(ROOT),
            start_new_session=True,
            preexec_fn=_die_with_parent,
            limit=64 * 1024 * 1024,
        )
        return cls(name, proc, log)

    async def _read(self) -> None:
        assert self.proc.stdout is not None  # piped
        async for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            if line.startswith('{"event": '):
                self.events.put_nowait(json.loads(line))
            else:
                self.tail.append(line)
                self.log.write(line + "\n")
        self.events.put_nowait({"event": "exit", "code": await self.proc.wait()})

    def describe(self) -> str:
        """Exit status and the last lines of output, for error messages."""
        if not self.log.closed:
            self.log.flush()
        try:
            err = Path(self.log.name).read_text(encoding="utf-8").splitlines()[-15:]
        except OSError:
            err = []
        lines = "\n".join([*self.tail, *err][-25:])
        return f"{self.name} (pid {self.proc.pid}, exit {self.proc.returncode}):\n{lines}"

    async def next_event(self, timeout_s: float) -> dict[str, Any]:
        """The next event line; raise if the process exits or nothing comes in time."""
        try:
            async with asyncio.timeout(timeout_s):
                event = await self.events.get()
        except TimeoutError:
            raise RuntimeError(f"no answer within {timeout_s:g} s from {self.describe()}") from None
        if event["event"] == "exit":
            raise RuntimeError(f"exited early: {self.describe()}")
        return event

    async def send(self, obj: dict[str, Any]) -> None:
        """One JSON line to the child's stdin."""
        assert self.proc.stdin is not None  # piped
        self.proc.stdin.write(json.dumps(obj).encode() + b"\n")
        await self.proc.stdin.drain()

    async def stop(self, grace_s: float = 10.0) -> None:
        """Close stdin, SIGTERM the process group, SIGKILL it after ``grace_s``."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                async with asyncio.timeout(grace_s):
                    await self.proc.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                await self.proc.wait()
        # The group may outlive its leader (the supervisor's children): make sure.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._reader.cancel()
        self.log.close()


class Target:
    """A system under test: where clients connect, how an alert is triggered."""

    name = "?"
    stream_url = ""
    pids: list[int]

    def __init__(self) -> None:
        self.pids = []
        self.children: list[Child] = []

    async def trigger(self, ident: str) -> None:
        """Send the alert ``ident`` (must return once the system accepted it)."""
        raise NotImplementedError

    async def prepare(self) -> None:
        """Warm the path (first-use costs) before anything is measured."""

    async def refresh(self) -> None:
        """Just before a timed trigger: make sure the HTTP connection is fresh.

        An idle keep-alive connection may be closed by the server (uvicorn: after 5 s)
        while clients connect; reusing it as it closes fails the trigger.
        """

    async def finish(self, idents: list[str]) -> None:
        """Undo what the run left behind in a shared deployment."""

    async def stop(self) -> None:
        for child in reversed(self.children):
            await child.stop()
        self.children.clear()

    async def _ready(self, child: Child, count: int, timeout_s: float) -> list[dict[str, Any]]:
        ready: list[dict[str, Any]] = []
        while len(ready) < count:
            event = await child.next_event(timeout_s)
            if event["event"] == "ready":
                ready.append(event)
        self.stream_url = ready[0]["stream_url"]
        for r in ready:
            host, _, pid = str(r["node"]).rpartition(":")
            if pid.isdigit() and host in ("raw", "naive", socket.gethostname()):
                self.pids.append(int(pid))
        return ready


class BaselineTarget(Target):
    """``raw`` (the floor) or ``naive`` (Starlette loop): ``POST /publish`` broadcasts."""

    SCRIPTS = {"raw": "raw_floor.py", "naive": "naive_starlette.py"}

    def __init__(self, name: str, frame_bytes: int) -> None:
        super().__init__()
        self.name = name
        self.frame_bytes = frame_bytes
        self.api_url = ""
        self.http: httpx.AsyncClient | None = None

    async def start(self, log_dir: Path) -> None:
        script = ROOT / "benchmarks" / self.SCRIPTS[self.name]
        if not script.exists():
            raise RuntimeError(f"{script} not found: baselines run from a source checkout")
        argv = [sys.executable, str(script), "--exit-on-stdin-eof"]
        child = await Child.start(self.name, argv, log_dir=log_dir)
        self.children.append(child)
        ready = await self._ready(child, 1, 30)
        self.api_url = ready[0]["api_url"]
        self.http = httpx.AsyncClient(base_url=self.api_url, timeout=30)

    async def trigger(self, ident: str) -> None:
        from ._load_geo import publish_payload

        assert self.http is not None  # started
        r = await self.http.post("/publish", content=publish_payload(ident, self.frame_bytes))
        if r.status_code != 202:
            raise RuntimeError(f"{self.name}: /publish answered {r.status_code}: {r.text[:200]}")

    async def prepare(self) -> None:
        """One publish before any client connects: the HTTP path's first-use costs."""
        await self.trigger("LT-WARM")

    async def refresh(self) -> None:
        assert self.http is not None  # started
        await self.http.get("/")  # any answer (404 included) renews the connection

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.aclose()
        await super().stop()


class AmberTarget(Target):
    """amber-relay: private (Redis + worker + serve) or an existing deployment."""

    name = "amber"

    def __init__(self, county: str, frame_bytes: int) -> None:
        super().__init__()
        self.county = county
        self.frame_bytes = frame_bytes
        self.agency = "loadtest"
        self.secret = secrets.token_hex(24)
        self.redis: RedisServer | None = None
        self.http: httpx.AsyncClient | None = None
        self.private = True

    async def start(self, log_dir: Path, *, processes: int, env: dict[str, str]) -> None:
        """Private Redis, ``amber-relay worker`` and ``serve --processes``; wait until ready."""
        self.redis = RedisServer(log_dir / "redis", appendonly=False)
        await asyncio.to_thread(self.redis.start)
        agencies = log_dir / "agencies.toml"
        agencies.write_text(
            f'[agencies.{self.agency}]\nsecret = "{self.secret}"\njurisdiction = ["US"]\n',
            encoding="utf-8",
        )
        full_env = {
            "AMBER_REDIS_URL": self.redis.url,
            "AMBER_AGENCIES_FILE": str(agencies),
            "AMBER_REDIS_PREFIX": f"loadtest-{secrets.token_hex(4)}:",
            # Outside clients are drawn up to 0.3 deg around the county, and the sentinel
            # covers them all: off a coast that is open sea past the default 22 km margin.
            "AMBER_JURISDICTION_MARGIN_KM": "100",
            # --frame-bytes may ask for frames past the default 64 KiB alert cap (the
            # slow-client runs use 256 KiB to fill buffers fast).
            "AMBER_MAX_INTERRUPT_BYTES": str(max(64 * 1024, 2 * self.frame_bytes)),
            **env,
        }
        cli = [sys.executable, "-m", "amber_relay.cli"]
        worker = await Child.start("worker", [*cli, "worker"], env=full_env, log_dir=log_dir)
        self.children.append(worker)
        argv = [*cli, "serve", "--processes", str(processes), "--port", "0", "--stream-port", "0"]
        serve = await Child.start("serve", argv, env=full_env, log_dir=log_dir)
        self.children.append(serve)
        ready = await self._ready(serve, processes, 90)
        self.http = httpx.AsyncClient(base_url=ready[0]["api_url"], timeout=30)

    def attach(self, api_url: str, stream_url: str, agency: str, secret: str) -> None:
        """Use an existing deployment instead of starting one."""
        self.private = False
        self.stream_url = stream_url
        self.agency, self.secret = agency, secret
        self.http = httpx.AsyncClient(base_url=api_url, timeout=30)

    async def _signed(self, method: str, path: str, body: bytes = b"") -> httpx.Response:
        assert self.http is not None  # started or attached
        headers = {
            "X-Amber-Agency": self.agency,
            "X-Amber-Signature": signature_header(
                self.secret, int(time.time()), method, path, body
            ),
        }
        if body:
            headers["Content-Type"] = "application/json"
        return await self.http.request(method, path, content=body, headers=headers)

    async def post(self, doc: dict[str, Any]) -> None:
        """Post a signed alert; raise unless it is accepted (202)."""
        r = await self._signed("POST", "/v1/alerts", json.dumps(doc).encode())
        if r.status_code != 202:
            raise RuntimeError(f"POST /v1/alerts answered {r.status_code}: {r.text[:300]}")

    async def trigger(self, ident: str) -> None:
        from ._load_geo import alert_doc

        await self.post(alert_doc(ident, self.county, self.frame_bytes))

    async def refresh(self) -> None:
        assert self.http is not None  # started or attached
        await self.http.get("/healthz")

    async def prepare(self) -> None:
        """Post an alert nobody matches and wait until it is applied (worker is up, caches warm)."""
        from ._load_geo import alert_doc

        ident = f"LT-WARM-{secrets.token_hex(4)}"
        await self.post(alert_doc(ident, "02020", 256))  # Anchorage: far from every client
        async with asyncio.timeout(30):
            while True:
                # Each signature is accepted once: a random query makes each poll's unique.
                r = await self._signed("GET", f"/v1/alerts/{ident}?n={secrets.token_hex(6)}")
                if r.status_code == 200 and r.json().get("applied_version", 0) >= 1:
                    break
                await asyncio.sleep(0.02)  # bounded by the timeout above
        self.warm_ident = ident

    async def finish(self, idents: list[str]) -> None:
        if self.private:
            return
        for ident in [*idents, getattr(self, "warm_ident", "")]:
            if ident:
                with contextlib.suppress(httpx.HTTPError):
                    await self._signed("DELETE", f"/v1/alerts/{ident}")

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.aclose()
        await super().stop()
        if self.redis is not None:
            await asyncio.to_thread(self.redis.stop)
            self.redis = None
