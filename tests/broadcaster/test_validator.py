"""Alert checks in child processes: same answers as in process, bounded time and memory,
no child left behind (real processes throughout)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from amber_relay import cap, geodata, ingest
from amber_relay.agencies import Agency
from amber_relay.errors import Busy, Rejected
from amber_relay.redis_server import RedisServer
from amber_relay.settings import Settings
from benchmarks.adversarial import star
from broadcaster._validator import ValidatorPool
from tests.amber_relay.test_children import alive, env_for, gone
from tests.conftest import running_system
from tests.support import Agency as Signer
from tests.support import ServerProcess, alert_doc, seconds, square

pytestmark = pytest.mark.asyncio

DATA = Path(__file__).parents[1] / "data" / "cap"
TEXAS = Agency("txdps", "", ("48",))
OKLAHOMA = Agency("okdps", "", ("40",))
US = Agency("ncmec", "", ("US",))
SMALL = json.dumps(alert_doc("SMALL", polygon=square(29.42, -98.49, 0.05))).encode()


@pytest_asyncio.fixture
async def pool() -> AsyncIterator[ValidatorPool]:
    """A pool of one child, default limits but a short time bound."""
    checks = ValidatorPool(Settings(ingest_max_concurrent=1, ingest_timeout_s=seconds(30)))
    await checks.start()
    try:
        yield checks
    finally:
        await checks.close()


def outcome(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> object:
    """What a call gives: its value, or the refusal as (class, code, reason)."""
    try:
        return fn(*args, **kwargs)
    except Rejected as exc:
        return (type(exc), exc.code, exc.reason)


async def outcome_of(call: Any) -> object:
    try:
        return await call
    except Rejected as exc:
        return (type(exc), exc.code, exc.reason)


def status_of(pid: int, field: str) -> int:
    """A /proc/<pid>/status figure in bytes (VmSize...)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


def validators_of(parent: int) -> list[int]:
    """Live validator processes whose parent is ``parent`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == parent and b"broadcaster._check_child" in cmdline and stat[0] != "Z":
            found.append(int(entry.name))
    return found


async def test_results_and_refusals_equal_the_in_process_functions(pool: ValidatorPool) -> None:
    """JSON and CAP parses, an accepted check, a 422, a 403 and a 400 come back exactly as
    the functions give them in process (same class, code and reason)."""
    s, geo = Settings(), geodata.load()
    now = time.time()
    alert = ingest.parse_json(SMALL)
    assert await pool.parse_json(SMALL) == alert
    for body in (b'{"identifier": ', b'{"identifier": "x"}', b"\xff"):
        assert await outcome_of(pool.parse_json(body)) == outcome(ingest.parse_json, body)
    # Accepted, 403 outside_jurisdiction, accepted; then expired: 422.
    for agency, at in ((TEXAS, now), (OKLAHOMA, now), (US, now), (TEXAS, now + 7200)):
        got = await outcome_of(pool.validate(alert, agency, now=at, alert_id="a/SMALL"))
        assert got == outcome(ingest.validate, alert, agency, geo, s, now=at, alert_id="a/SMALL")
    assert isinstance(got, tuple) and got[1] == "expired"
    xml = (DATA / "circle_only.xml").read_bytes()
    limits: dict[str, Any] = {
        "max_vertices": s.max_vertices,
        "accepted_event_codes": s.accepted_event_codes,
        "default_lifetime_s": s.cap_default_lifetime_s,
    }
    msg = cap.parse_cap(xml, **limits)
    assert await pool.parse_cap(xml) == msg and msg.alert is not None
    sent = ingest.parse_time(msg.sent, "sent")
    for agency in (TEXAS, OKLAHOMA):
        got = await outcome_of(pool.validate(msg.alert, agency, now=sent))
        assert got == outcome(ingest.validate, msg.alert, agency, geo, s, now=sent)
    assert isinstance(got, tuple) and got[1] == "outside_jurisdiction"
    bad = (DATA / "hostile_malformed.xml").read_bytes()
    assert await outcome_of(pool.parse_cap(bad)) == outcome(cap.parse_cap, bad, **limits)


async def test_a_check_over_the_time_bound_is_busy_and_its_child_is_killed_and_replaced() -> None:
    """A child that does not answer in time is SIGKILLed and replaced: the call and one
    waiting for the only child are Busy (ingest_busy), and the next call is served."""
    checks = ValidatorPool(Settings(ingest_max_concurrent=1, ingest_timeout_s=0.5))
    try:
        await checks.start()
        [stuck] = checks.pids()
        os.kill(stuck, signal.SIGSTOP)  # it cannot answer, however fast the machine
        first = asyncio.create_task(checks.parse_json(SMALL))
        await asyncio.sleep(0)  # the first call holds the only child
        with pytest.raises(Busy) as waiting:
            await checks.parse_json(SMALL)
        with pytest.raises(Busy) as timed_out:
            await first
        assert timed_out.value.code == waiting.value.code == "ingest_busy"
        assert timed_out.value.status == 503 and "0.5 s" in timed_out.value.reason
        assert not alive(stuck)
        [fresh] = checks.pids()
        assert fresh != stuck
        checks.timeout_s = seconds(30)  # the replacement may still be loading
        assert await checks.parse_json(SMALL) == ingest.parse_json(SMALL)
        assert checks.pids() == [fresh]
    finally:
        await checks.close()
    assert not alive(fresh)


async def test_a_child_that_dies_mid_check_is_503_and_replaced(pool: ValidatorPool) -> None:
    """A child killed while checking gives Busy ingest_failed (503), not a crash, and the
    next call is served by a new child."""
    [child] = pool.pids()
    os.kill(child, signal.SIGSTOP)
    call = asyncio.create_task(pool.parse_json(SMALL))
    await asyncio.sleep(0)
    os.kill(child, signal.SIGKILL)
    with pytest.raises(Busy) as info:
        await call
    assert info.value.code == "ingest_failed" and info.value.status == 503
    assert await pool.parse_json(SMALL) == ingest.parse_json(SMALL)
    assert pool.pids() != [child]


async def test_a_cancelled_call_finishes_and_its_child_serves_the_next(
    pool: ValidatorPool,
) -> None:
    """A caller that goes away does not kill the check: it ends, its answer is
    discarded, and the same child answers the next call (not with the stale answer)."""
    [child] = pool.pids()
    other = json.dumps(alert_doc("OTHER", polygon=square(29.42, -98.49, 0.05))).encode()
    call = asyncio.create_task(pool.parse_json(SMALL))
    await asyncio.sleep(0)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert (await pool.parse_json(other)).identifier == "OTHER"
    assert pool.pids() == [child]


async def test_memory_over_the_limit_is_too_intricate_and_the_next_check_is_served(
    pool: ValidatorPool,
) -> None:
    """A check that needs more address space than ingest_memory_limit_bytes gives 422
    too_intricate naming the limit; the child is replaced and the next check served."""
    small = await pool.parse_json(SMALL)
    await pool.validate(small, TEXAS, now=time.time())
    # What a child occupies once loaded and warm, plus 40 MiB: a small check fits, the
    # 20,000-point star's edge pairs (~90 MB) do not.
    limit = status_of(pool.pids()[0], "VmSize") + 40 * 1024 * 1024
    star20000 = ingest.parse_json(json.dumps(alert_doc("STAR", polygon=[star(19_999)])).encode())
    checks = ValidatorPool(Settings(ingest_memory_limit_bytes=limit))
    try:
        await checks.start()
        [child] = checks.pids()
        with pytest.raises(Rejected) as info:
            await checks.validate(star20000, US, now=time.time())
        assert (info.value.status, info.value.code) == (422, "too_intricate")
        assert f"{limit // 2**20} MiB" in info.value.reason
        assert not alive(child)
        validated = await checks.validate(small, TEXAS, now=time.time())
        assert validated.record.regions
    finally:
        await checks.close()


async def test_the_children_are_gone_after_the_server_stops(
    settings: Settings, agency: Signer
) -> None:
    """The serving process starts a check child with itself and reaps every child when it
    stops (after having used them for a post)."""
    async with running_system(settings) as system:
        await system.post(agency, alert_doc("GONE", polygon=square(29.42, -98.49, 0.05)))
        pids = validators_of(os.getpid())
        assert pids
    assert not any(alive(p) for p in pids)
    assert validators_of(os.getpid()) == []


async def test_no_check_child_survives_a_sigkilled_server(
    redis_server: RedisServer, agencies_file: Path
) -> None:
    """SIGKILL the serving process: its check children get SIGKILL from the kernel
    (PR_SET_PDEATHSIG) and none survives."""
    proc = ServerProcess(
        ["serve", "--port", "0", "--stream-port", "0"], env_for(redis_server, agencies_file)
    )
    pids: list[int] = []
    try:
        await proc.wait_ready()
        pids = validators_of(proc.proc.pid)
        assert pids
        proc.kill()
        await gone(pids)
    finally:
        proc.stop()
        for p in pids:
            if alive(p):
                os.kill(p, signal.SIGKILL)
