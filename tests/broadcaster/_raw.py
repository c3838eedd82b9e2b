"""Raw HTTP/1.1 over a real socket, for what an HTTP client library would hide."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from amber_relay.signing import signature_header
from tests.support import Agency, seconds

__all__ = ["Answer", "host_port", "read_answer", "request_head", "signed_head"]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def host_port(url: str) -> tuple[str, int]:
    """``(host, port)`` of an ``http://host:port`` or ``ws://host:port/...`` URL."""
    netloc = url.split("://", 1)[1].split("/", 1)[0]
    host, _, port = netloc.rpartition(":")
    return host, int(port)


def request_head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def signed_head(agency: Agency, path: str, body: bytes, length: int | None = None) -> bytes:
    """Headers of a signed JSON POST whose body is ``body`` (Content-Length ``length``)."""
    sig = signature_header(agency.secret, int(time.time()), "POST", path, body)
    return request_head(
        "POST",
        path,
        {
            "Host": "localhost",
            "Content-Type": "application/json",
            "Content-Length": str(len(body) if length is None else length),
            "X-Amber-Agency": agency.id,
            "X-Amber-Signature": sig,
        },
    )


async def read_answer(reader: asyncio.StreamReader, timeout_s: float = 10.0) -> Answer:
    """One response (status line, headers, Content-Length body), waiting at most ``timeout_s``."""
    async with asyncio.timeout(seconds(timeout_s)):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Answer(status, headers, body)
