"""Supervised background loops: a loop that dies is logged and started again."""

from __future__ import annotations

import asyncio

import pytest

from broadcaster._tasks import supervise
from tests.support import seconds

pytestmark = pytest.mark.asyncio


async def test_a_dying_loop_is_logged_and_restarted(caplog: pytest.LogCaptureFixture) -> None:
    """Two crashes and a return are logged and counted; the fourth run keeps going."""
    runs = 0
    running = asyncio.Event()

    async def loop() -> None:
        nonlocal runs
        runs += 1
        if runs <= 2:
            raise RuntimeError(f"bug #{runs}")
        if runs == 3:
            return
        running.set()
        await asyncio.Event().wait()

    restarts: dict[str, int] = {}
    task = asyncio.create_task(supervise("feed", loop, restarts=restarts, base_s=0.01))
    async with asyncio.timeout(seconds(10)):
        await running.wait()
    assert restarts == {"feed": 3}
    messages = [r.getMessage() for r in caplog.records if r.name == "amber_relay.tasks"]
    assert messages == [
        "task feed died; restarting",
        "task feed died; restarting",
        "task feed returned; a background loop must not end: restarting",
    ]
    assert caplog.records[0].exc_info is not None  # the traceback is in the log
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_cancelling_the_supervisor_cancels_the_loop() -> None:
    """Cancellation is not a crash: the loop is cancelled and not restarted."""
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def loop() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    restarts: dict[str, int] = {}
    task = asyncio.create_task(supervise("stats", loop, restarts=restarts))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled.is_set() and restarts == {}
