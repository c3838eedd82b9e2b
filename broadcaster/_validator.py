"""Alert checks (parse, validate) in a few child processes, bounded in time and memory.

The serving process's event loop also serves thousands of stream sockets: Python work
in a thread of that process holds its GIL (stalling them), and a thread cannot be
stopped. So the hook's pure, CPU-heavy work (``ingest.parse_json``, ``cap.parse_cap``,
``ingest.validate``) runs in child processes of the serving process:

- at most ``ingest_max_concurrent`` children. :meth:`ValidatorPool.start` starts one
  with the server, so the first alert after a deploy does not wait for an interpreter
  to start (~0.6 s of imports); more are started on demand, up to the bound, and one
  that is lost is replaced at once;
- each child is a fresh interpreter (fork+exec, never a bare fork of this threaded
  process; not :mod:`multiprocessing`, whose start-up pickles), sets RLIMIT_AS to
  ``ingest_memory_limit_bytes``, maps the geodata once, then answers one request at a
  time over a socketpair: msgpack frames (msgspec, never pickle), a 4-byte big-endian
  length first. Settings reach it as the first frame;
- a call waits at most ``ingest_timeout_s`` in all (for a free child, then for its
  answer); beyond it the child is SIGKILLed and replaced and the call raises
  ``Busy`` (503 ``ingest_busy``);
- refusals come back as (class name, code, reason) and are raised again as the same
  :class:`~amber_relay.errors.Rejected` subclass, so the API answers exactly as if the
  check ran in process; a check that ran out of memory raises ``Invalid`` (422
  ``too_intricate``), a child that died unexplained ``Busy`` (503 ``ingest_failed``);
  the child is replaced either way. The serving process never dies of it;
- children die with the serving process (``PR_SET_PDEATHSIG``, SIGKILL: they hold
  nothing worth a clean exit) and :meth:`ValidatorPool.close` kills and reaps them.

Cancellation: a caller that stops waiting does not stop its check. The check ends
(within the same deadline, else its child is killed) and its answer is discarded; the
child stays busy until then, so abandoned checks cannot pile up, and a client that
hangs up cannot make the server start interpreters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import msgspec

from amber_relay import cap, ingest
from amber_relay.agencies import Agency
from amber_relay.errors import Busy, Invalid
from amber_relay.model import AlertIn
from amber_relay.settings import Settings

from ._check_child import (
    LEN,
    REJECTED,
    CapParsed,
    Checked,
    Failed,
    OutOfMemory,
    ParseCap,
    Parsed,
    ParseJson,
    R,
    Refused,
    Reply,
    Request,
    Validate,
    encode,
    framed,
)

__all__ = ["ValidatorPool"]

log = logging.getLogger("amber_relay.validator")

# -- the serving process's side -------------------------------------------------------


@dataclass(eq=False)
class _Child:
    proc: subprocess.Popen[bytes]
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    loaded: bool = False
    """Its first frame (empty: imports and geodata done) was read."""

    async def wait_loaded(self) -> None:
        if not self.loaded:
            await self.reader.readexactly(LEN)  # an empty frame
            self.loaded = True


class ValidatorPool:
    """Checks alerts in at most ``ingest_max_concurrent`` child processes.

    Every method is called from the event loop's thread (children are started from
    it: their parent-death signal is tied to that thread).
    """

    def __init__(self, settings: Settings) -> None:
        self.timeout_s = settings.ingest_timeout_s
        self._settings = settings
        self._hello = framed(encode(settings))
        self._slots = asyncio.Semaphore(settings.ingest_max_concurrent)
        self._idle: list[_Child] = []
        self._children: set[_Child] = set()
        self._calls: set[asyncio.Task[Reply]] = set()
        self._closed = False
        self._dec: msgspec.msgpack.Decoder[Reply] = msgspec.msgpack.Decoder(Reply)
        # The child imports this very package (same code as the server's).
        root = str(Path(__file__).resolve().parent.parent)
        path = os.environ.get("PYTHONPATH")
        self._env = {
            **os.environ,
            "PYTHONPATH": root + (os.pathsep + path if path else ""),
            # One thread for numpy's BLAS: its pool (one per core, each reserving memory)
            # would count against RLIMIT_AS on a many-core host, and a check is serial.
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }

    def pids(self) -> list[int]:
        """Process ids of the live children (for tests and diagnostics)."""
        return sorted(c.proc.pid for c in self._children)

    async def start(self) -> None:
        """Start one child and wait until it has loaded (~0.6 s): the first alert after
        a start does not wait for an interpreter.

        Raises:
            OSError: the child could not be started, or died loading (see its stderr).
        """
        if self._idle or self._closed:
            return
        child = await self._spawn()
        try:
            await child.wait_loaded()
        except (asyncio.IncompleteReadError, OSError) as exc:
            status = await self._retire(child)
            raise OSError(f"the alert check process exited while loading ({status})") from exc
        self._idle.append(child)

    async def parse_json(self, body: bytes) -> AlertIn:
        """:func:`amber_relay.ingest.parse_json` in a child; raises what it raises, or
        ``Busy`` / ``Invalid`` as the module docstring says."""
        return (await self._call(ParseJson(body), Parsed)).alert

    async def parse_cap(self, body: bytes) -> cap.CapMessage:
        """:func:`amber_relay.cap.parse_cap` (the settings' limits) in a child."""
        return (await self._call(ParseCap(body), CapParsed)).message

    async def validate(
        self, alert: AlertIn, agency: Agency, *, now: float, alert_id: str | None = None
    ) -> ingest.Validated:
        """:func:`amber_relay.ingest.validate` (shipped geodata, the settings) in a child."""
        # The child needs the agency's id and jurisdiction, not its secret.
        agency = Agency(agency.id, "", agency.jurisdiction, agency.name)
        reply = await self._call(Validate(alert, agency, now, alert_id), Checked)
        return ingest.Validated(reply.record, reply.warnings)

    async def close(self) -> None:
        """Kill and reap every child; checks in flight end with ``Busy``."""
        self._closed = True
        for child in self._children:
            _kill(child)
        if self._calls:
            await asyncio.wait(list(self._calls))  # each sees its child's end, reaps it
        for child in list(self._children):
            await self._retire(child)

    async def _call(self, request: Request, kind: type[R]) -> R:
        """One request, answered within ``timeout_s`` (see the module docstring).

        Cancellation: the caller stops waiting; the exchange goes on and frees its
        child and slot when it ends (answer discarded).
        """
        if self._closed:
            raise Busy("the server is stopping", code="ingest_busy")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        try:
            async with asyncio.timeout_at(deadline):
                await self._slots.acquire()
        except TimeoutError:
            raise Busy(
                f"alert checks are all busy; none freed within {self.timeout_s:g} s",
                code="ingest_busy",
            ) from None
        call = asyncio.create_task(self._exchange(framed(encode(request)), deadline))
        self._calls.add(call)
        call.add_done_callback(self._done)
        reply = await asyncio.shield(call)
        if isinstance(reply, kind):
            return reply
        if isinstance(reply, Refused):
            cls = REJECTED.get(reply.kind, Invalid)
            raise cls(reply.reason, code=reply.code)
        if isinstance(reply, Failed):
            raise RuntimeError(f"alert check failed in its process: {reply.error}")
        raise RuntimeError(f"alert check process answered {type(reply).__name__}")

    def _done(self, call: asyncio.Task[Reply]) -> None:
        self._calls.discard(call)
        self._slots.release()
        if not call.cancelled():
            call.exception()  # retrieved: a caller that went away no longer awaits it

    async def _exchange(self, frame: bytes, deadline: float) -> Reply:
        """Send ``frame`` to an idle (or new) child and read its reply by ``deadline``."""
        if self._closed:  # closed while this call waited for a slot
            raise Busy("the server is stopping", code="ingest_busy")
        try:
            child = self._idle.pop() if self._idle else await self._spawn()
        except OSError as exc:
            log.error("could not start an alert check process: %r", exc)
            raise Busy(
                "could not start an alert check; retry shortly", code="ingest_failed"
            ) from None
        try:
            async with asyncio.timeout_at(deadline):
                child.writer.write(frame)
                await child.writer.drain()
                await child.wait_loaded()
                size = int.from_bytes(await child.reader.readexactly(LEN), "big")
                data = await child.reader.readexactly(size)
        except TimeoutError:
            log.warning(
                "alert check over %g s: killing its process %d", self.timeout_s, child.proc.pid
            )
            await self._retire(child, replace=True)
            raise Busy(
                f"checking the alert took more than {self.timeout_s:g} s", code="ingest_busy"
            ) from None
        except (asyncio.IncompleteReadError, OSError):
            status = await self._retire(child, replace=True)
            if self._closed:
                raise Busy("the server is stopping", code="ingest_busy") from None
            log.error("alert check process %d died (status %d)", child.proc.pid, status)
            raise Busy(
                "the alert check ended unexpectedly; retry shortly", code="ingest_failed"
            ) from None
        except BaseException:  # cancelled mid-frame: the child's stream is out of step
            await self._retire(child)
            raise
        reply = self._dec.decode(data)
        if isinstance(reply, OutOfMemory):
            await self._retire(child, replace=True)
            limit_mib = self._settings.ingest_memory_limit_bytes // (1024 * 1024)
            raise Invalid(
                f"checking this area needs more than the {limit_mib} MiB of memory a check"
                " may use: simplify it (fewer vertices or parts)",
                code="too_intricate",
            )
        if self._closed:
            await self._retire(child)
        else:
            self._idle.append(child)
        return reply

    async def _spawn(self) -> _Child:
        parent_sock, child_sock = socket.socketpair()
        try:
            proc = _popen(child_sock.fileno(), self._env)
        except BaseException:
            parent_sock.close()
            raise
        finally:
            child_sock.close()
        try:
            reader, writer = await asyncio.open_connection(sock=parent_sock)
        except BaseException:
            parent_sock.close()
            proc.kill()
            proc.wait()
            raise
        child = _Child(proc, reader, writer)
        self._children.add(child)
        writer.write(self._hello)
        return child

    async def _retire(self, child: _Child, *, replace: bool = False) -> int:
        """Kill and reap ``child`` (idempotent); start a replacement if none is idle."""
        self._children.discard(child)
        with contextlib.suppress(ValueError):
            self._idle.remove(child)
        _kill(child)
        child.writer.close()
        status = await asyncio.to_thread(child.proc.wait)
        with contextlib.suppress(OSError):
            await child.writer.wait_closed()
        if replace and not self._closed and not self._idle:
            try:
                self._idle.append(await self._spawn())
            except OSError as exc:  # the next call tries again
                log.error("could not start an alert check process: %r", exc)
        return status


def _popen(fd: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    # From the loop's thread, on purpose: the child's parent-death signal is tied to the
    # thread that starts it. Quick (vfork + exec: no preexec_fn), so not worth a thread.
    return subprocess.Popen(
        [sys.executable, "-m", "broadcaster._check_child", str(fd), str(os.getpid())],
        pass_fds=(fd,),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,  # the server's stdout carries its ready line
        env=env,
        start_new_session=True,  # a terminal's Ctrl-C is the server's to handle
    )


def _kill(child: _Child) -> None:
    if child.proc.poll() is None:
        child.proc.kill()
