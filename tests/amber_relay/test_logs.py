"""AMBER_LOG_FORMAT=json: one JSON object per line, alert id and version on every line
about an alert, and never a secret or a client's coordinates."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest

from amber_relay.logs import JsonFormatter, alert_context
from amber_relay.redis_server import free_port
from tests.support import Agency, Client, ServerProcess, alert_doc, seconds, signed, square

# Positions with digits that appear nowhere else in a run's output.
HELLO = (29.4213, -98.4917)
MOVED = (29.4377, -98.5123)


def test_formatter_adds_the_alert_of_the_context() -> None:
    """A record logged inside alert_context carries that alert id and version."""
    record = logging.LogRecord("amber_relay.x", logging.INFO, __file__, 1, "hi %s", ("x",), None)
    with alert_context("TX-1", 3):
        line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "hi x" and line["alert_id"] == "TX-1" and line["version"] == 3
    assert "alert_id" not in json.loads(JsonFormatter().format(record))


@pytest.mark.asyncio
async def test_json_logs_of_a_full_run_name_alerts_and_leak_nothing(
    agencies_file: Path, agency: Agency, tmp_path: Path
) -> None:
    """A whole run (hello, move, alert, update, cancel, a forged request) logs JSON lines;
    each line naming an alert has its id and version; no secret, no coordinates."""
    env = {
        "AMBER_LOG_FORMAT": "json",
        "AMBER_AGENCIES_FILE": str(agencies_file),
        "AMBER_PORT": str(free_port()),
        "AMBER_STREAM_PORT": str(free_port()),
    }
    proc = ServerProcess(["-v", "run", "--data-dir", str(tmp_path / "data")], env)
    try:
        ready = await proc.wait_ready()
        c = await Client.open(ready["stream_url"], lat=HELLO[0], lon=HELLO[1])
        await c.send({"type": "move", "lat": MOVED[0], "lon": MOVED[1]})
        async with httpx.AsyncClient(base_url=ready["api_url"], timeout=seconds(10)) as http:
            doc = alert_doc("TX-LOG1", polygon=square(*MOVED, 0.1))
            assert (await signed(http, "POST", "/v1/alerts", agency, doc)).status_code == 202
            assert (await c.next_of("interrupt"))["alert"]["id"] == "txdps/TX-LOG1"
            doc = alert_doc("TX-LOG1", polygon=square(*MOVED, 0.1), headline="AMBER Alert: new")
            assert (await signed(http, "POST", "/v1/alerts", agency, doc)).status_code == 202
            assert (await c.next_of("interrupt"))["alert"]["version"] == 2
            r = await signed(http, "DELETE", "/v1/alerts/TX-LOG1", agency)
            assert r.status_code == 202
            assert (await c.next_of("clear"))["id"] == "txdps/TX-LOG1"
            forged = Agency(agency.id, "not-the-secret")
            assert (await signed(http, "POST", "/v1/alerts", forged, doc)).status_code == 401
        await c.close()
    finally:
        proc.stop()
    lines = proc.lines
    # Besides JSON, only the banner `run` prints for a human (not log lines).
    plain = [line for line in lines if not line.startswith("{")]
    assert all(line.startswith(("amber-relay is up", "  ")) for line in plain), plain
    logged = [json.loads(line) for line in lines if line.startswith("{")]
    about = [e for e in logged if "TX-LOG1" in e.get("msg", "")]
    assert len(about) >= 3, lines  # published v1, v2, cleared
    for entry in about:
        assert entry.get("alert_id") == "txdps/TX-LOG1" and isinstance(entry["version"], int), entry
    for entry in logged:
        assert {"ts", "level", "logger", "msg"} <= set(entry) or entry.get("event") == "ready"
    text = "\n".join(lines)
    assert agency.secret not in text
    for value in (*HELLO, *MOVED):
        assert f"{abs(value)}" not in text, value
