"""``serve --processes N``: start N serving children and keep them, or stop them all.

- SIGTERM or SIGINT to the parent is forwarded to every child (each drains); the
  parent waits for them (bounded: ``drain_s`` + 15 s, then SIGKILL) and exits with
  their status (0 when all exited 0, else the first failure; 128+n for signal n).
- Children never outlive the parent: on Linux each asks the kernel for SIGTERM when
  its parent dies (``PR_SET_PDEATHSIG``), which also covers a SIGKILLed parent.
  Children run in their own session, so a terminal's Ctrl-C reaches them once (from
  the parent), not twice.
- A child that exits is started again after an exponential backoff (0.5 s doubling
  to ``restart_backoff_max_s``); after ``restart_give_up`` children in a row exited
  within ``restart_fast_s`` of starting, the parent stops the others and exits 1.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType

from .settings import Settings

__all__ = ["run_children"]

log = logging.getLogger("amber_relay.children")

_PR_SET_PDEATHSIG = 1
_TICK_S = 0.1


def _die_with_parent(parent: int, signum: int = signal.SIGTERM) -> None:
    # Runs in the child between fork and exec (single-threaded there), or first thing
    # after exec (broadcaster._validator). The kernel sends ``signum`` when the thread
    # that started the child ends.
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the prctl: do not run orphaned
        os._exit(1)


@dataclass
class _Slot:
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restart_at: float = 0.0


def _status(code: int) -> int:
    return 128 - code if code < 0 else code


def run_children(
    cmd: Sequence[str],
    settings: Settings,
    *,
    env: Mapping[str, str] | None = None,
    on_exit: Callable[[int], None] | None = None,
) -> int:
    """Run ``settings.processes`` copies of ``cmd`` until a signal; returns the exit status.

    ``env`` is the children's environment (default: this process's); ``on_exit(pid)``
    is called when a child exited and is about to be replaced.
    """
    parent = os.getpid()
    slots = [_Slot() for _ in range(settings.processes)]
    stopping: list[int] = []

    def start(slot: _Slot) -> None:
        slot.proc = subprocess.Popen(
            list(cmd),
            env=None if env is None else dict(env),
            preexec_fn=lambda: _die_with_parent(parent),
            start_new_session=True,
        )
        slot.started = time.monotonic()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)
        for slot in slots:
            if slot.proc is not None and slot.proc.poll() is None:
                slot.proc.send_signal(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for slot in slots:
            start(slot)
        fast = 0
        while not stopping:
            now = time.monotonic()
            for slot in slots:
                if slot.proc is None:
                    if now >= slot.restart_at and not stopping:
                        start(slot)
                    continue
                code = slot.proc.poll()
                if code is None:
                    continue
                uptime = now - slot.started
                if on_exit is not None:
                    on_exit(slot.proc.pid)
                fast = fast + 1 if uptime < settings.restart_fast_s else 0
                if fast >= settings.restart_give_up:
                    print(
                        f"amber-relay: serve processes exited {fast} times in a row within"
                        f" {settings.restart_fast_s:g} s of starting (last exit status"
                        f" {_status(code)}); giving up",
                        file=sys.stderr,
                        flush=True,
                    )
                    slot.proc = None
                    _stop_all(slots, signal.SIGTERM, settings.drain_s + 15)
                    return 1
                delay = min(settings.restart_backoff_max_s, 0.5 * 2 ** max(0, fast - 1))
                log.warning(
                    "serve process %d exited with status %d after %.1f s; restarting in %.1f s",
                    slot.proc.pid,
                    _status(code),
                    uptime,
                    delay,
                )
                slot.proc = None
                slot.restart_at = now + delay
            time.sleep(_TICK_S)
        return _stop_all(slots, None, settings.drain_s + 15)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _stop_all(slots: list[_Slot], signum: int | None, wait_s: float) -> int:
    """Signal (unless already done) and reap every child; the first failure's status."""
    procs = [s.proc for s in slots if s.proc is not None]
    if signum is not None:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)
    deadline = time.monotonic() + wait_s
    status = 0
    for p in procs:
        try:
            code = p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.error("serve process %d did not stop within %g s: killing it", p.pid, wait_s)
            p.kill()
            code = p.wait()
        if code != 0 and status == 0:
            status = _status(code)
    return status
