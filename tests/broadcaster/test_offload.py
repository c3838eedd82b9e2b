"""The hook's off-loop runner: bounded concurrency, bounded waiting, precise refusal."""

from __future__ import annotations

import asyncio
import threading

import pytest

from amber_relay.errors import Busy
from broadcaster._offload import Offload

pytestmark = pytest.mark.asyncio


async def test_result_and_exceptions_come_back() -> None:
    """A function's result is returned and its exception raised, from a worker thread."""
    off = Offload(2, 5.0)
    assert await off.run(lambda a, b=0: a + b, 1, b=2) == 3
    loop_thread = threading.get_ident()
    assert await off.run(threading.get_ident) != loop_thread
    with pytest.raises(ZeroDivisionError):
        await off.run(lambda: 1 / 0)


async def test_work_over_the_time_bound_is_busy_and_keeps_its_slot_until_done() -> None:
    """Work that outlasts the bound answers Busy; its slot stays taken until the thread ends,
    so a second caller is Busy too; once it ends the slot serves again."""
    off = Offload(1, 0.05)
    release = threading.Event()
    with pytest.raises(Busy) as info:
        await off.run(release.wait, 10)
    assert info.value.status == 503 and "0.05 s" in info.value.reason
    with pytest.raises(Busy, match="none freed"):
        await off.run(lambda: 1)
    release.set()
    for _ in range(200):  # bounded: the released thread frees its slot within ms
        try:
            assert await off.run(lambda: 7) == 7
            break
        except Busy:
            await asyncio.sleep(0.01)
    else:
        raise AssertionError("slot never freed")
