"""``amber-relay listen`` as a user runs it: a child process printing JSON lines."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import pytest

from clients import listen
from tests.conftest import System
from tests.support import ROOT, Agency, alert_doc, seconds, signed, square

LAT, LON = 29.42, -98.49


@asynccontextmanager
async def listen_process(*args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m amber_relay.cli listen ARGS``; killed on the way out if still running."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "amber_relay.cli",
        "listen",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(ROOT),
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.communicate()


async def stderr_until(proc: asyncio.subprocess.Process, needle: str) -> list[str]:
    """stderr lines up to and including the first one containing ``needle``."""
    assert proc.stderr is not None
    lines: list[str] = []
    async with asyncio.timeout(seconds(30)):
        while not lines or needle not in lines[-1]:
            raw = await proc.stderr.readline()
            if not raw:
                raise AssertionError(f"listen exited before {needle!r}: {lines}")
            lines.append(raw.decode())
    return lines


def run_in_process(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser()
    listen.add_arguments(parser)
    return listen.run(parser.parse_args(argv))


@pytest.mark.asyncio
async def test_listen_prints_the_interrupt_acks_it_and_exits_after_count(
    system: System, agency: Agency
) -> None:
    """With --count 1 --ack, listen prints the interrupt as one JSON line, acks it, exits 0."""
    url = system.stream_url
    async with listen_process(
        "--url", url, "--lat", str(LAT), "--lon", str(LON), "--count", "1", "--ack"
    ) as proc:
        await stderr_until(proc, "connected")
        doc = alert_doc("TX-L1", polygon=square(LAT, LON, 0.1), headline="AMBER Alert: L1")
        r = await signed(system.http, "POST", "/v1/alerts", agency, doc)
        assert r.status_code == 202, r.text
        assert proc.stdout is not None
        async with asyncio.timeout(seconds(30)):
            line = await proc.stdout.readline()
            rest, _ = await proc.communicate()
        frame = json.loads(line)
        assert frame["type"] == "interrupt"
        assert frame["alert"]["id"] == "txdps/TX-L1"
        assert frame["alert"]["version"] == 1
        assert frame["alert"]["infos"][0]["headline"] == "AMBER Alert: L1"
        assert rest == b""
        assert proc.returncode == 0
    shown = 0
    async with asyncio.timeout(seconds(10)):
        while shown != 1:  # stats are flushed every 50 ms in tests: bounded polling
            shown = (await system.status(agency, "TX-L1"))["versions"]["1"]["shown"]
            if shown != 1:
                await asyncio.sleep(0.02)


@pytest.mark.asyncio
async def test_listen_exits_1_when_the_server_refuses_it(system: System) -> None:
    """An unknown region is refused by the server (1008): listen says so and exits 1."""
    async with listen_process("--url", system.stream_url, "--region", "99999") as proc:
        async with asyncio.timeout(seconds(30)):
            out, err = await proc.communicate()
    assert proc.returncode == 1
    assert out == b""
    assert "1008" in err.decode()
    assert "99999" in err.decode()


@pytest.mark.parametrize(
    "argv",
    [
        ["--lat", "29.4"],
        ["--region", "48029", "--lat", "29.4", "--lon", "-98.5"],
        ["--lat", "95", "--lon", "0"],
        ["--region", "48029", "--count", "-1"],
        ["--region", "48029", "--url", "http://127.0.0.1:1/v1/stream"],
    ],
)
def test_listen_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Missing or conflicting positions, bad numbers and a non-ws URL exit 2 before connecting."""
    assert run_in_process(argv) == 2
    assert "amber-relay listen:" in capsys.readouterr().err
