"""``amber-relay send``: sign and post an alert (JSON or CAP) for an agency, or cancel one."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from amber_relay.agencies import load_agencies
from amber_relay.errors import AmberError
from amber_relay.signing import signature_header

__all__ = ["HELP", "add_arguments", "run", "signed_request"]

HELP = "sign and post an alert file (JSON or CAP XML) for an agency"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", nargs="?", help="alert file: .json or .xml (CAP 1.2)")
    p.add_argument("--url", default="http://127.0.0.1:8000", help="API base URL")
    p.add_argument("--agency", required=True, help="agency id (X-Amber-Agency)")
    p.add_argument(
        "--secret", help="agency secret (default: from --agencies-file or $AMBER_SECRET)"
    )
    p.add_argument("--agencies-file", help="agencies TOML to read the secret from")
    p.add_argument("--cancel", metavar="ID", help="cancel alert ID instead of posting a file")
    p.add_argument("--status", metavar="ID", help="print alert ID's state and delivery figures")
    p.add_argument(
        "--expires-in",
        type=float,
        metavar="HOURS",
        help="JSON only: set expires to now + HOURS before signing (demos, drills)",
    )
    p.add_argument("--timeout", type=float, default=10.0, help="request timeout in seconds")


def signed_request(
    client: httpx.Client,
    method: str,
    url: str,
    path: str,
    agency: str,
    secret: str,
    body: bytes = b"",
    content_type: str | None = None,
) -> httpx.Response:
    """Send one signed request (the signature covers t, method, path and body)."""
    headers = {
        "X-Amber-Agency": agency,
        "X-Amber-Signature": signature_header(secret, int(time.time()), method, path, body),
    }
    if content_type:
        headers["Content-Type"] = content_type
    return client.request(method, url.rstrip("/") + path, content=body, headers=headers)


def _secret(args: argparse.Namespace) -> str:
    if args.secret:
        return str(args.secret)
    if args.agencies_file:
        agency = load_agencies(args.agencies_file).get(args.agency)
        if agency is None:
            raise AmberError(f"agency {args.agency!r} is not in {args.agencies_file}")
        return agency.secret
    env = os.environ.get("AMBER_SECRET")
    if env:
        return env
    raise AmberError("give --secret, --agencies-file, or set AMBER_SECRET")


def run(args: argparse.Namespace) -> int:
    secret = _secret(args)
    with httpx.Client(timeout=args.timeout) as client:
        if args.cancel:
            r = signed_request(
                client, "DELETE", args.url, f"/v1/alerts/{args.cancel}", args.agency, secret
            )
        elif args.status:
            r = signed_request(
                client, "GET", args.url, f"/v1/alerts/{args.status}", args.agency, secret
            )
        elif args.file:
            path = Path(args.file)
            body = path.read_bytes()
            if args.expires_in is not None and path.suffix.lower() == ".json":
                doc = json.loads(body)
                expires = datetime.now(UTC) + timedelta(hours=args.expires_in)
                doc["expires"] = expires.isoformat(timespec="seconds")
                body = json.dumps(doc).encode()
            ctype = (
                "application/cap+xml"
                if path.suffix.lower() in (".xml", ".cap")
                else ("application/json")
            )
            r = signed_request(
                client, "POST", args.url, "/v1/alerts", args.agency, secret, body, ctype
            )
        else:
            raise AmberError("give an alert FILE, --cancel ID or --status ID")
    print(r.text)
    if r.status_code >= 400:
        print(f"amber-relay send: HTTP {r.status_code}", file=sys.stderr)
        return 1
    return 0
