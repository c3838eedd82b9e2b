"""Memory held by stalled uploads: N connections each send all but one byte of 4 MiB and stop.

Starts ``amber-relay run`` as a child and prints its RSS before and after, with what the
connections were answered. ``--agency`` adds a known agency and a fresh (but wrong)
signature header, which passes the hook's pre-body checks, so the bodies meet the
per-process body budget instead of an early 401.

    .venv/bin/python benchmarks/stalled_uploads.py [--agency] [--uploads 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from amber_relay.agencies import load_agencies  # noqa: E402
from amber_relay.redis_server import free_port  # noqa: E402
from tests.support import ServerProcess  # noqa: E402

MIB = 1024 * 1024


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def main(uploads: int, agency: bool) -> dict[str, object]:
    data = Path(tempfile.mkdtemp(prefix="amber-stalled-"))
    env = {"AMBER_PORT": str(free_port()), "AMBER_STREAM_PORT": str(free_port())}
    proc = ServerProcess(["run", "--data-dir", str(data)], env)
    writers: list[asyncio.StreamWriter] = []
    try:
        ready = await proc.wait_ready()
        demo = load_agencies(data / "agencies.toml")["demo"]
        host, port = ready["api_url"].split("//")[1].rsplit(":", 1)
        before = rss_mib(proc.proc.pid)
        headers = {
            "Host": "x",
            "Content-Type": "application/json",
            "Content-Length": str(4 * MIB),
        }
        if agency:
            headers["X-Amber-Agency"] = demo.id
            headers["X-Amber-Signature"] = f"t={int(time.time())},v1={'0' * 64}"
        head = "POST /v1/alerts HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        readers = []
        for _ in range(uploads):
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(head.encode() + b"\r\n" + b"x" * (4 * MIB - 1))
            readers.append(reader)
            writers.append(writer)

        async def answer(reader: asyncio.StreamReader) -> str:
            try:
                line = await asyncio.wait_for(reader.readline(), 3)
            except TimeoutError:
                return "(no answer: stalled)"
            except ConnectionError:
                return "(reset)"
            return line.decode("latin-1").strip() or "(closed)"

        answers = Counter(await asyncio.gather(*(answer(r) for r in readers)))
        after = rss_mib(proc.proc.pid)
        return {
            "uploads": uploads,
            "agency_headers": agency,
            "rss_before_mib": round(before),
            "rss_after_mib": round(after),
            "answers": dict(answers),
        }
    finally:
        for w in writers:
            w.close()
        proc.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--agency", action="store_true")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.uploads, args.agency))))
