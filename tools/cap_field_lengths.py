"""Print the longest value of each CAP text field in a corpus of CAP messages.

Usage: ``python tools/cap_field_lengths.py [DIR]`` (default ``tests/data/cap/real``).
The per-field limits of ``amber_relay.model`` (``TEXT_MAX_CHARS``...) are set with a
margin above these figures; docs/alerts.md records the last run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import defusedxml.ElementTree as DefusedET

from amber_relay.model import SHORT_MAX_CHARS, TEXT_MAX_CHARS

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "tests" / "data" / "cap" / "real"
NS = "{urn:oasis:names:tc:emergency:cap:1.2}"
# CAP element -> the limit amber-relay applies to it.
FIELDS = {
    "identifier": SHORT_MAX_CHARS,
    "sender": SHORT_MAX_CHARS,
    "note": TEXT_MAX_CHARS,
    "event": TEXT_MAX_CHARS,
    "senderName": TEXT_MAX_CHARS,
    "headline": TEXT_MAX_CHARS,
    "description": TEXT_MAX_CHARS,
    "instruction": TEXT_MAX_CHARS,
    "contact": TEXT_MAX_CHARS,
    "areaDesc": TEXT_MAX_CHARS,
    "resourceDesc": TEXT_MAX_CHARS,
    "web": 2000,
}
PARAMETERS = {"CMAMtext": 360, "CMAMlongtext": 1000}


def measure(directory: Path) -> dict[str, tuple[int, str]]:
    """Longest length (characters, stripped) of each field and the file it is in."""
    longest: dict[str, tuple[int, str]] = {}

    def note(name: str, value: str | None, file: str) -> None:
        n = len((value or "").strip())
        if n > longest.get(name, (-1, ""))[0]:
            longest[name] = (n, file)

    for path in sorted(directory.glob("*.xml")):
        root = DefusedET.fromstring(path.read_bytes(), forbid_dtd=True)
        for el in root.iter():
            tag = el.tag.rpartition("}")[2] if el.tag.startswith(NS) else None
            if tag in FIELDS:
                note(tag, el.text, path.name)
            elif tag == "parameter":
                name = el.findtext(NS + "valueName")
                if name in PARAMETERS:
                    note(name, el.findtext(NS + "value"), path.name)
            elif tag == "polygon":
                note("polygon (pairs)", " ".join(["x"] * len((el.text or "").split())), path.name)
    return longest


def main(argv: list[str]) -> int:
    directory = Path(argv[1]) if len(argv) > 1 else DEFAULT_DIR
    files = len(list(directory.glob("*.xml")))
    print(f"{files} messages in {directory.name}/")
    print(f"{'field':<18} {'longest':>8} {'limit':>7}  file")
    limits = {**FIELDS, **PARAMETERS}
    for name, (n, file) in sorted(measure(directory).items()):
        limit = limits.get(name)
        print(f"{name:<18} {n:>8} {limit if limit else '-':>7}  {file}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
