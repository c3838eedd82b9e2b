"""Process logging: plain text, or one JSON object per line (``AMBER_LOG_FORMAT=json``).

Lines about an alert carry ``alert_id`` and ``version``: passed as ``extra`` or set for
a whole block with :func:`alert_context` (a context variable, so concurrent jobs on one
event loop do not mix). Nothing logged here carries a secret or a client's position:
the project logs neither, and the JSON form adds only the fields below.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import time
from collections.abc import Iterator

__all__ = ["ArqJobFilter", "JsonFormatter", "alert_context", "configure"]

_ALERT: contextvars.ContextVar[tuple[str, int] | None] = contextvars.ContextVar(
    "amber_alert", default=None
)
_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def alert_context(alert_id: str, version: int) -> Iterator[None]:
    """Every line logged in this block (this task only) names this alert version."""
    token = _ALERT.set((alert_id, version))
    try:
        yield
    finally:
        _ALERT.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, msg, alert_id/version, exc."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        alert_id = getattr(record, "alert_id", None)
        version = getattr(record, "version", None)
        if alert_id is None:
            current = _ALERT.get()
            if current is not None:
                alert_id, version = current
        if alert_id is not None:
            out["alert_id"] = alert_id
            out["version"] = version
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


_JOB_MARK = ":apply:"


class ArqJobFilter(logging.Filter):
    """Name the alert version on arq's own job lines.

    arq logs a job by its id, and apply jobs' ids are ``<queue>:apply:<id>:<version>``
    (workers/queue.py; arq adds ``:apply`` when it names the running job), so the
    alert is read back from the record's arguments.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "alert_id", None) is None and isinstance(record.args, tuple):
            for arg in record.args:
                if isinstance(arg, str) and _JOB_MARK in arg:
                    rest = arg.split(_JOB_MARK, 1)[1]
                    # arq names a running job "<job id>:<function>".
                    rest = rest.removesuffix(":apply")
                    alert_id, _, version = rest.rpartition(":")
                    if alert_id and version.isdigit():
                        record.alert_id = alert_id
                        record.version = int(version)
                    break
        return True


def configure(log_format: str, level: int) -> None:
    """Log to stderr in ``text`` or ``json``.

    Raises:
        ValueError: another format was asked for.
    """
    if log_format not in ("text", "json"):
        raise ValueError(f"AMBER_LOG_FORMAT={log_format!r}: expected text or json")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(_TEXT))
    handler.addFilter(ArqJobFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
