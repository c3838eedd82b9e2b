"""Write docs/alert.schema.json from the msgspec types (run after changing model.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import msgspec

from amber_relay.model import AlertIn

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "docs" / "alert.schema.json"


def render() -> str:
    """The schema document as committed: sorted keys, two-space indent, final newline."""
    return json.dumps(msgspec.json.schema(AlertIn), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    SCHEMA_PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}", file=sys.stderr)
