"""Mutated bodies through the real hook: always a 2xx or a 4xx problem, never a 5xx or a hang.

The parsers are property-tested on their own (tests/amber_relay/test_fuzz_parsers.py);
this drives the same kind of input through HTTP, signing included, with a fixed seed.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tests.conftest import System
from tests.support import Agency, alert_doc, signed, square

pytestmark = pytest.mark.asyncio

CAP_DIR = Path(__file__).resolve().parent.parent / "data" / "cap"


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One random byte-level mutation: flip, delete, duplicate or truncate."""
    if not data:
        return data
    b = bytearray(data)
    op = rng.randrange(4)
    i = rng.randrange(len(b))
    if op == 0:
        b[i] = rng.randrange(256)
    elif op == 1:
        del b[i : i + rng.randrange(1, 20)]
    elif op == 2:
        b[i:i] = b[i : i + rng.randrange(1, 40)]
    else:
        del b[i:]
    return bytes(b)


async def test_mutated_json_and_cap_never_give_5xx(system: System, agency: Agency) -> None:
    """200 mutated JSON and CAP bodies each get 202 or a 4xx problem with a detail."""
    rng = random.Random(20261122)
    seeds = [
        (
            json.dumps(
                alert_doc(
                    "FUZZ-1",
                    polygon=square(29.4, -98.5, 0.1),
                    circles=[{"lat": 29.4, "lon": -98.5, "radius_km": 5}],
                    same=["048029"],
                )
            ).encode(),
            "application/json",
        ),
        *((p.read_bytes(), "application/cap+xml") for p in sorted(CAP_DIR.glob("*.xml"))),
    ]
    for n in range(200):
        body, ctype = seeds[n % len(seeds)]
        for _ in range(rng.randrange(1, 4)):
            body = mutate(rng, body)
        r = await signed(system.http, "POST", "/v1/alerts", agency, body, content_type=ctype)
        assert r.status_code < 500, (n, r.status_code, r.text, body[:200])
        if r.status_code >= 400:
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["detail"]
