"""``amber-relay loadtest``: many WebSocket clients, one alert, latency and exactness."""

from __future__ import annotations

import argparse

__all__ = ["HELP", "add_arguments", "run"]

HELP = "open N clients in and around a county, post an alert, report latency and exactness"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clients", type=int, default=1000)


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError("loadtest lands with the fan-out issue")
