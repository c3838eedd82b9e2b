"""The seen set: dedupe by (id, version), tombstones, the cap, and its file."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from clients._seen import SeenSet, load, save


def test_seen_shows_each_version_once() -> None:
    """(id, version) is new once; a newer version is new again, an older one never."""
    seen = SeenSet()
    assert seen.show("A", 1)
    assert not seen.show("A", 1)
    assert seen.show("A", 3)
    assert not seen.show("A", 2)
    assert seen.version("A") == 3


def test_seen_clear_drops_the_alert_and_leaves_a_tombstone() -> None:
    """A cleared alert leaves the set; a late copy of it stays off screen, an update does not."""
    seen = SeenSet()
    assert not seen.clear("A")  # never shown: nothing to take down
    seen.show("A", 2)
    assert seen.clear("A")
    assert "A" not in seen and seen.newest() == []
    assert not seen.show("A", 2)  # a lagging broadcaster's copy of the cancelled version
    assert seen.show("A", 3)


def test_seen_is_capped_dropping_the_oldest() -> None:
    """Past its cap the set forgets the alerts shown longest ago."""
    seen = SeenSet(cap=3)
    for alert_id in "ABCD":
        seen.show(alert_id, 1)
    assert seen.newest() == [("D", 1), ("C", 1), ("B", 1)]
    seen.show("B", 2)  # showing again makes it the newest
    seen.show("E", 1)
    assert [i for i, _ in seen.newest()] == ["E", "B", "D"]


def test_seen_for_wire_fits_the_budget_newest_first() -> None:
    """The hello/poll list keeps the newest pairs that fit, and leaves out forbidden ids."""
    seen = SeenSet()
    for n in range(100):
        seen.show(f"ALERT-{n:03d}-" + "x" * 50, 1)
    seen.show("A,B", 1)
    wire = seen.for_wire(1000, forbidden=",")
    assert wire and all("," not in i for i, _ in wire)
    assert wire[0][0].startswith("ALERT-099")
    assert len(json.dumps(wire)) <= 1000
    assert seen.for_wire(1000)[0] == ("A,B", 1)


def test_seen_file_round_trips(tmp_path: Path) -> None:
    """What is saved loads back identically: shown pairs in order, and tombstones."""
    seen = SeenSet()
    seen.show("A", 1)
    seen.show("B", 2)
    seen.show("C", 1)
    seen.clear("C")
    path = tmp_path / "seen.json"
    save(path, seen.dumps())
    back = load(path)
    assert back.newest() == [("B", 2), ("A", 1)]
    assert not back.show("C", 1)
    assert [p.name for p in tmp_path.iterdir()] == ["seen.json"]  # no temp file left


def test_seen_save_replaces_atomically(tmp_path: Path) -> None:
    """A save replaces the file in one rename, so a reader sees the old or the new one."""
    path = tmp_path / "seen.json"
    save(path, b'{"shown": [["OLD", 1]]}')
    inode = os.stat(path).st_ino
    seen = SeenSet()
    seen.show("NEW", 1)
    save(path, seen.dumps())
    assert os.stat(path).st_ino != inode  # a new file renamed over, not rewritten in place
    assert load(path).newest() == [("NEW", 1)]


@pytest.mark.parametrize(
    "content", [b"", b"{not json", b'{"shown": "nope"}', b'{"shown": [["A", "one"]]}']
)
def test_seen_corrupt_file_starts_empty(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    """A corrupt file is logged and ignored: the client starts with nothing shown."""
    path = tmp_path / "seen.json"
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="amber_relay.client"):
        seen = load(path)
    assert len(seen) == 0
    assert "corrupt" in caplog.text


def test_seen_missing_file_starts_empty(tmp_path: Path) -> None:
    """No file yet (first run) is not an error."""
    assert len(load(tmp_path / "absent.json")) == 0


def test_seen_save_into_a_missing_directory_raises(tmp_path: Path) -> None:
    """A save that cannot be written raises OSError and leaves nothing behind."""
    with pytest.raises(OSError):
        save(tmp_path / "no" / "such" / "seen.json", b"{}")
    assert list(tmp_path.iterdir()) == []
