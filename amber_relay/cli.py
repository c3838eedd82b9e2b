"""``amber-relay``: run, serve, worker, listen, send, loadtest.

Settings come from ``AMBER_*`` environment variables, then flags; they are read once
here and passed down.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .errors import AmberError
from .logs import configure
from .settings import Settings

__all__ = ["main"]

log = logging.getLogger("amber_relay")


def _loop_policy() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux/macOS
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        os.environ,
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        stream_port=getattr(args, "stream_port", None),
        processes=getattr(args, "processes", None),
    )


def _print_ready(endpoints: object) -> None:
    print(json.dumps({"event": "ready", **vars(endpoints)}), flush=True)


def _ensure_demo_agencies(data_dir: Path) -> tuple[Path, str, str]:
    path = data_dir / "agencies.toml"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_hex(24)
        path.write_text(
            "# Demo agency created by `amber-relay run`; may alert anywhere in the US.\n"
            f'[agencies.demo]\nsecret = "{secret}"\njurisdiction = ["US"]\n',
            encoding="utf-8",
        )
        path.chmod(0o600)
    from .agencies import load_agencies

    demo = load_agencies(path).get("demo")
    return path, "demo", demo.secret if demo else "(see the agencies file)"


def cmd_run(args: argparse.Namespace) -> int:
    """The whole system in one process: private Redis (unless configured), API, stream, worker."""
    from broadcaster.server import serve

    from .redis_server import RedisServer

    settings = _settings(args)
    data_dir = Path(args.data_dir)
    redis_server = None
    redis_url: str | None = settings.redis_url
    if settings.redis_url is None and not settings.redis_sentinels:
        redis_server = RedisServer(data_dir / "redis", appendonly=True)
        redis_server.start()
        redis_url = redis_server.url
    secret_line = ""
    if settings.agencies_file is None:
        path, agency, secret = _ensure_demo_agencies(data_dir)
        settings = settings.replace(agencies_file=str(path))
        secret_line = f"demo agency: id={agency} secret={secret} (in {path})"

    def ready(endpoints: object) -> None:
        ep = vars(endpoints)
        where = redis_url or f"sentinels {settings.redis_sentinels}"
        if redis_server is not None:
            where += f", embedded: {redis_server.executable}"
        print(f"amber-relay is up (redis {where})", flush=True)
        print(f"  agency hook + poll:  {ep['api_url']}/v1/alerts", flush=True)
        print(f"  client stream:       {ep['stream_url']}", flush=True)
        print(f"  demo page:           {ep['api_url']}/", flush=True)
        if secret_line:
            print(f"  {secret_line}", flush=True)
            print(
                "  try: amber-relay listen --lat 29.42 --lon -98.49   and in another shell:\n"
                f"       amber-relay send examples/alert.json --expires-in 4 --url {ep['api_url']}"
                f" --agencies-file {settings.agencies_file} --agency demo",
                flush=True,
            )
        _print_ready(endpoints)

    _loop_policy()
    try:
        asyncio.run(serve(settings, redis_url=redis_url, with_worker=True, on_ready=ready))
    finally:
        if redis_server is not None:
            redis_server.stop()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """API + stream server; several processes share the ports with SO_REUSEPORT."""
    settings = _settings(args)
    if settings.redis_url is None and not settings.redis_sentinels:
        raise AmberError(
            "serve needs AMBER_REDIS_URL (e.g. redis://127.0.0.1:6379/0) or"
            " AMBER_REDIS_SENTINELS; for a self-contained system use `amber-relay run`",
            code="no_redis_url",
        )
    if settings.processes > 1:
        return _supervise(args, settings)
    from broadcaster.server import serve

    _loop_policy()
    asyncio.run(serve(settings, redis_url=settings.redis_url, on_ready=_print_ready))
    return 0


def _supervise(args: argparse.Namespace, settings: Settings) -> int:
    from .redis_server import free_port

    port = settings.port or free_port(settings.host)
    stream_port = settings.stream_port or free_port(settings.host)
    cmd = [
        sys.executable,
        "-m",
        "amber_relay.cli",
        "serve",
        "--processes",
        "1",
        "--host",
        settings.host,
        "--port",
        str(port),
        "--stream-port",
        str(stream_port),
    ]
    # Prometheus multiprocess mode: each child writes its metrics to files in a
    # directory of this run only (a previous run's files would add stale counts), and
    # /metrics on any child sums those of every live child.
    metrics_dir = tempfile.mkdtemp(prefix="amber-relay-metrics-")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics_dir}
    from ._children import run_children

    try:
        return run_children(
            cmd, settings, env=env, on_exit=lambda pid: _forget_metrics(metrics_dir, pid)
        )
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _forget_metrics(metrics_dir: str, pid: int) -> None:
    """Drop a dead child's live gauges (its counters keep counting in the sums)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, metrics_dir)  # type: ignore[no-untyped-call]


def cmd_worker(args: argparse.Namespace) -> int:
    """The arq worker: applies submissions and expires alerts."""
    settings = _settings(args)
    if settings.redis_url is None and not settings.redis_sentinels:
        raise AmberError(
            "worker needs AMBER_REDIS_URL or AMBER_REDIS_SENTINELS", code="no_redis_url"
        )
    from workers.runner import run_worker

    _loop_policy()
    redis_url = settings.redis_url

    if settings.worker_metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.worker_metrics_port, addr=settings.host)

    from broadcaster._tasks import supervise

    async def main() -> None:
        # A bug that ends the worker's loop must not leave a live but idle process.
        task = asyncio.create_task(supervise("worker", lambda: run_worker(settings, redis_url)))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
    return 0


def _parser() -> argparse.ArgumentParser:
    from clients import listen, loadtest, send

    p = argparse.ArgumentParser(prog="amber-relay", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = p.add_subparsers(dest="command", required=True)

    def server_flags(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--host", help="bind address (default 127.0.0.1)")
        sp.add_argument("--port", type=int, help="HTTP API port (default 8000; 0 = any)")
        sp.add_argument("--stream-port", type=int, help="WebSocket port (default 8001; 0 = any)")

    sp = sub.add_parser("run", help="the whole system on an embedded default")
    server_flags(sp)
    sp.add_argument(
        "--data-dir",
        default=".amber-relay",
        help="where the private Redis and the demo agency live (default .amber-relay)",
    )
    sp.set_defaults(func=cmd_run)
    sp = sub.add_parser("serve", help="API + stream server (needs AMBER_REDIS_URL)")
    server_flags(sp)
    sp.add_argument("--processes", type=int, help="processes sharing the ports (default 1)")
    sp.set_defaults(func=cmd_serve)
    sp = sub.add_parser("worker", help="arq worker (needs AMBER_REDIS_URL)")
    sp.set_defaults(func=cmd_worker)
    for name, module in (("listen", listen), ("send", send), ("loadtest", loadtest)):
        sp = sub.add_parser(name, help=module.HELP)
        module.add_arguments(sp)
        sp.set_defaults(func=module.run)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        log_format = Settings.from_env(os.environ).log_format
        configure(log_format, logging.INFO if args.verbose else logging.WARNING)
    except ValueError as exc:
        print(f"amber-relay: {exc}", file=sys.stderr)
        return 2
    try:
        code: int = args.func(args)
        return code
    except AmberError as exc:
        print(f"amber-relay: {exc.reason}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
