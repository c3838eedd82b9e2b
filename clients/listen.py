"""``amber-relay listen``: be a device at a place and print the alerts it would show.

Built on :class:`clients.client.AlertClient`, so it reconnects, deduplicates and
falls back to polling exactly as an app would. stdout gets one JSON line per event
(the interrupt or clear frame); stderr gets a line per connection change.

Exit status: 0 when ``--count`` interrupts were printed, 1 when the server refused
the client for good (ClientError: an unknown region, a wrong URL), 2 on a usage
error, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from amber_relay import frames

from .client import AlertClient, ClientError, ConnectionState

__all__ = ["HELP", "add_arguments", "run"]

HELP = "be a client at a place: print each alert it would show, as JSON lines"

_PROG = "amber-relay listen"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default="ws://127.0.0.1:8001/v1/stream", help="stream URL")
    p.add_argument(
        "--api-url",
        help="HTTP API base URL (http://127.0.0.1:8000) for the poll fallback while the"
        " stream is unreachable; default: no fallback",
    )
    p.add_argument("--lat", type=float, help="latitude (with --lon)")
    p.add_argument("--lon", type=float, help="longitude (with --lat)")
    p.add_argument("--region", help="5-digit county FIPS code instead of --lat/--lon")
    p.add_argument("--seen-file", help="JSON file of the alerts already shown, kept across runs")
    p.add_argument("--count", type=int, default=0, metavar="N", help="exit 0 after N interrupts")
    p.add_argument(
        "--ack", action="store_true", help="send a 'shown' ack for each interrupt printed"
    )


def _usage_error(args: argparse.Namespace) -> str | None:
    if args.region is not None and (args.lat is not None or args.lon is not None):
        return "give --lat and --lon, or --region, not both"
    if args.region is None and (args.lat is None or args.lon is None):
        return "give --lat and --lon, or --region"
    if args.count < 0:
        return "--count must be >= 0"
    return None


def _print_state(state: ConnectionState) -> None:
    line = f"{_PROG}: {state.state}"
    if state.detail:
        line += f": {state.detail}"
    if state.retry_in_s is not None:
        line += f"; retrying in {state.retry_in_s:.2f} s"
    print(line, file=sys.stderr, flush=True)


async def _listen(client: AlertClient, count: int, ack: bool) -> int:
    out = sys.stdout.buffer
    shown = 0
    async with client:
        async for event in client:
            out.write(frames.encode(event) + b"\n")
            out.flush()
            if isinstance(event, frames.Interrupt):
                if ack:
                    await client.ack(event.alert.id, event.alert.version, "shown")
                shown += 1
                if count and shown >= count:
                    return 0
    return 0


def run(args: argparse.Namespace) -> int:
    problem = _usage_error(args)
    if problem is not None:
        print(f"{_PROG}: {problem}", file=sys.stderr)
        return 2
    try:
        client = AlertClient(
            args.url,
            lat=args.lat,
            lon=args.lon,
            region=args.region,
            api_url=args.api_url,
            seen_path=args.seen_file,
            on_state=_print_state,
        )
    except ValueError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_listen(client, args.count, args.ack))
    except ClientError as exc:
        print(f"{_PROG}: refused by the server: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
