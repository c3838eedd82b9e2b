"""``amber-relay listen``: connect as a client at a place and print frames as they arrive."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

import websockets

__all__ = ["HELP", "add_arguments", "run"]

HELP = "connect to the stream at a location and print frames"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default="ws://127.0.0.1:8001/v1/stream", help="stream URL")
    p.add_argument("--lat", type=float, help="latitude")
    p.add_argument("--lon", type=float, help="longitude")
    p.add_argument("--region", help="5-digit county FIPS code instead of lat/lon")
    p.add_argument("--count", type=int, default=0, help="exit after this many interrupts")


async def _listen(args: argparse.Namespace) -> int:
    hello: dict[str, object] = {"type": "hello", "seen": []}
    if args.region:
        hello["region"] = args.region
    else:
        hello["lat"], hello["lon"] = args.lat, args.lon
    n = 0
    async with websockets.connect(args.url, compression=None) as ws:
        await ws.send(json.dumps(hello))
        async for message in ws:
            print(message, flush=True)
            if json.loads(message).get("type") == "interrupt":
                n += 1
                if args.count and n >= args.count:
                    return 0
    return 0


def run(args: argparse.Namespace) -> int:
    if args.region is None and (args.lat is None or args.lon is None):
        print("amber-relay listen: give --lat and --lon, or --region", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_listen(args))
    except KeyboardInterrupt:
        return 130
