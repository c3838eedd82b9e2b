"""deploy/haproxy.cfg's per-address limits, on a real haproxy (the broadcasters see its address)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CFG = Path(__file__).resolve().parent.parent / "deploy" / "haproxy.cfg"
HAPROXY = shutil.which("haproxy") or (
    "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
)

pytestmark = pytest.mark.skipif(
    HAPROXY is None and not os.environ.get("CI"), reason="haproxy is not installed"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def lb() -> Iterator[int]:
    """haproxy on a free port, allowing 3 new connections per 10 s per address."""
    assert HAPROXY is not None, "CI must install haproxy (.ci/run)"
    api, stream, dead = _free_port(), _free_port(), _free_port()
    env = {
        "PATH": os.environ["PATH"],
        "LB_MAXCONN": "200",
        "LB_API_BIND": f"127.0.0.1:{api}",
        "LB_STREAM_BIND": f"127.0.0.1:{stream}",
        # No broadcaster behind it: every request that gets through is answered 503.
        **{
            k: f"127.0.0.1:{dead}"
            for k in ("LB_B1_API", "LB_B2_API", "LB_B1_STREAM", "LB_B2_STREAM")
        },
        "LB_CONN_RATE_PER_10S": "3",
    }
    proc = subprocess.Popen(
        [HAPROXY, "-db", "-f", str(CFG)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(api)
        yield api
    finally:
        proc.terminate()
        proc.wait(10)


def _wait_listening(port: int, timeout_s: float = 10.0) -> None:
    # The bound port is haproxy's readiness signal. Each probe is one connection of the
    # rate budget, so the probes come from another source address (127.0.0.2).
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with _connect_from("127.0.0.2", port) as s:
            if s is not None:
                return
        time.sleep(0.05)
    raise TimeoutError(f"haproxy did not listen on {port} within {timeout_s} s")


@contextlib.contextmanager
def _connect_from(source: str, port: int) -> Iterator[socket.socket | None]:
    """A connection to haproxy on 127.0.0.1 from ``source`` (a loopback address)."""
    with socket.socket() as s:
        s.settimeout(5)
        s.bind((source, 0))
        yield s if s.connect_ex(("127.0.0.1", port)) == 0 else None


def _answer(port: int, source: str = "127.0.0.1") -> bytes:
    with _connect_from(source, port) as s:
        if s is None:
            return b""
        try:
            s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            chunks = []
            while chunk := s.recv(4096):
                chunks.append(chunk)
            return b"".join(chunks)
        except ConnectionError:
            return b""


def test_connection_flood_from_one_address_is_refused_at_accept(lb: int) -> None:
    """Past LB_CONN_RATE_PER_10S new connections an address gets no answer; others still do."""
    answers = [_answer(lb) for _ in range(6)]
    assert all(a.startswith(b"HTTP/1.1 503") for a in answers[:3]), answers[:3]
    assert answers[3:] == [b"", b"", b""]
    assert _answer(lb, source="127.0.0.3").startswith(b"HTTP/1.1 503")
