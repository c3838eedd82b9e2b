"""The data build: the shipped file is the pinned build output; the file format round-trips."""

from __future__ import annotations

import hashlib
import os
from importlib import resources
from pathlib import Path

import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

from amber_relay._boundaries import Boundaries
from tools import build_geodata
from tools.build_geodata import INPUTS, SHIPPED_SHA256, pack


def test_shipped_file_is_the_pinned_build_output() -> None:
    """us-boundaries.bin has the sha256 the build pins (and docs/geodata.md states)."""
    data = resources.files("amber_relay").joinpath("data", "us-boundaries.bin").read_bytes()
    assert hashlib.sha256(data).hexdigest() == SHIPPED_SHA256
    doc = (Path(__file__).parents[2] / "docs" / "geodata.md").read_text(encoding="utf-8")
    assert SHIPPED_SHA256 in doc


def test_pack_round_trips_rings_holes_parts_and_long_edges(tmp_path: Path) -> None:
    """Packed features decode to the same geometry (1e-5 deg grid), long edges included."""
    donut = Polygon(
        [(-100, 30), (-99, 30), (-99, 31), (-100, 31), (-100, 30)],
        [[(-99.6, 30.4), (-99.4, 30.4), (-99.4, 30.6), (-99.6, 30.6), (-99.6, 30.4)]],
    )
    islands = MultiPolygon([box(170.0, 50.0, 171.5, 50.2), box(-179.5, 51.0, -179.0, 51.3)])
    tiny = box(-77.17123, 38.88111, -77.171, 38.882)
    path = tmp_path / "b.bin"
    path.write_bytes(pack([("1", "a", donut), ("2", "b", islands), ("03", "c", tiny)], {}))
    got = Boundaries(path)
    assert got.ids == ["1", "2", "03"] and got.names == ["a", "b", "c"]
    for i, want in enumerate([donut, islands, tiny]):
        g = got.geometry(i)
        assert g.geom_type == want.geom_type
        assert shapely.hausdorff_distance(g, want) < 1e-6  # long edges gain points on them
        assert g.symmetric_difference(want).area < 1e-9
        assert got.vertices(i) >= shapely.get_num_coordinates(want)
    assert got.bbox[1].tolist() == pytest.approx([-179.5, 50.0, 171.5, 51.3])


@pytest.mark.skipif(
    "GEODATA_INPUTS" not in os.environ,
    reason="set GEODATA_INPUTS to a directory with the two pinned packages to rebuild",
)
def test_build_from_the_pinned_packages_is_byte_for_byte_the_shipped_file(tmp_path: Path) -> None:
    """tools/build_geodata.py rebuilds us-boundaries.bin byte for byte (CI downloads inputs)."""
    src = Path(os.environ["GEODATA_INPUTS"])
    wheel, tgz = (src / name for name in INPUTS)
    out = tmp_path / "us-boundaries.bin"
    assert build_geodata.main([str(wheel), str(tgz), str(out)]) == 0
    assert hashlib.sha256(out.read_bytes()).hexdigest() == SHIPPED_SHA256
