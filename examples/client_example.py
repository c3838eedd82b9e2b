"""A minimal app around the client library: print each alert's headline, ack it as shown.

Start the system and this example, then post an alert::

    amber-relay run
    python examples/client_example.py --url ws://127.0.0.1:8001/v1/stream --lat 29.42 --lon -98.49
    amber-relay send examples/alert.json --url http://127.0.0.1:8000 \\
        --agencies-file .amber-relay/agencies.toml --agency demo

Ctrl-C closes the connection cleanly. See docs/client.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from amber_relay import frames
from clients.client import AlertClient, ClientError


async def show_alerts(url: str, lat: float, lon: float) -> int:
    async with AlertClient(url, lat=lat, lon=lon) as client:
        async for event in client:
            if isinstance(event, frames.Interrupt):
                alert = event.alert
                info = client.info(alert)  # the text in the client's language
                print(f"ALERT {alert.id} v{alert.version}: {info.headline}", flush=True)
                # A real app acks only once the alert is actually on screen.
                await client.ack(alert.id, alert.version, "shown")
            else:
                print(f"CLEAR {event.id}: {event.reason}", flush=True)
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--url", default="ws://127.0.0.1:8001/v1/stream", help="stream URL")
    p.add_argument("--lat", type=float, required=True, help="latitude")
    p.add_argument("--lon", type=float, required=True, help="longitude")
    args = p.parse_args()
    try:
        return asyncio.run(show_alerts(args.url, args.lat, args.lon))
    except ValueError as exc:  # a bad URL or position, found before connecting
        p.error(str(exc))
    except ClientError as exc:  # refused for good: wrong URL, unknown region
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
