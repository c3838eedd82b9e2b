"""The published schema and examples stay true to the code."""

from __future__ import annotations

import json
from pathlib import Path

from amber_relay import geodata, ingest
from amber_relay.agencies import Agency
from amber_relay.settings import Settings
from tools.gen_schema import SCHEMA_PATH, render

ROOT = Path(__file__).resolve().parent.parent


def test_schema_file_is_current() -> None:
    """docs/alert.schema.json equals the schema generated from the msgspec types."""
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render(), "run tools/gen_schema.py"


def test_full_example_alert_is_valid() -> None:
    """examples/alert-full.json parses and validates (with a fresh expiry)."""
    doc = json.loads((ROOT / "examples" / "alert-full.json").read_text(encoding="utf-8"))
    sent = ingest.parse_time(doc["sent"], "sent")
    alert = ingest.parse_json(json.dumps(doc).encode())
    validated = ingest.validate(
        alert, Agency("txdps", "x" * 16, ("48",)), geodata.load(), Settings(), now=sent
    )
    content = validated.record.content
    assert [i.language for i in content.infos] == ["en-US", "es-US"]
    assert content.children[0].name == "Lily Ramos"
    assert content.vehicles[0].plate == "KQX4410"
    assert len(validated.record.pending_photos) == 2


def test_readme_test_command_is_what_ci_runs() -> None:
    """.ci/run calls scripts/test, the README's test command."""
    assert "scripts/test" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
