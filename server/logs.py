"""Structured logs: one JSON object per line, each carrying the request id.

The request id is taken from the client's ``X-Request-Id`` (when it looks like one) or
made up, kept in a context variable for the request's task, written into every record
logged while the request runs, and echoed in the response header.

Background loops log a failure that repeats (the database is down: every round fails
the same way) through :class:`server.outages.FailureLog`: one line when it starts, one
when it ends; a traceback of an unreachable database is left out here too.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any, TextIO

from aiohttp import web

from server.outages import is_unavailable, summary
from server.settings import LogFormat

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "geopush_request_id", default=None)

REQUEST_ID_HEADER = "X-Request-Id"
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_STD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName"}

access_log = logging.getLogger("geopush.access")


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", "request_id", ...extra, "exc"}`` per line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            out["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STD_ATTRS and key != "request_id":
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = request_id_var.get()
        return f"{line} [{request_id}]" if request_id else line


def configure_logging(
    fmt: LogFormat, level: str = "INFO", *, stream: TextIO | None = None
) -> None:
    """Send the ``geopush`` and ``aiohttp`` loggers to ``stream`` (stderr) in ``fmt``.
    Called once by ``geopush serve``; tests leave logging to pytest."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt is LogFormat.JSON:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    for name in ("geopush", "aiohttp", "asyncpg"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
    # asyncpg's pool logs each failed attempt to reconnect (with backoff, up to a minute
    # apart) with a traceback: while the database is down, a line without one says it.
    logging.getLogger("asyncpg.pool").addFilter(_without_connection_tracebacks)


def _without_connection_tracebacks(record: logging.LogRecord) -> bool:
    if record.exc_info and record.exc_info[1] is not None and is_unavailable(
            record.exc_info[1]):
        record.msg = f"{record.getMessage()}: {summary(record.exc_info[1])}"
        record.args = None
        record.exc_info = None
    return True


@web.middleware
async def request_id_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Bind the request id for the request and log one access line when it ends.

    Runs outermost, so that the access line sees the final status (errors included).
    """
    given = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = given if _CLIENT_ID.match(given) else uuid.uuid4().hex
    token = request_id_var.set(request_id)
    started = time.perf_counter()
    status = 500
    try:
        response: web.StreamResponse = await handler(request)
        status = response.status
        response.headers[REQUEST_ID_HEADER] = request_id
        return response
    finally:
        access_log.info("%s %s %d", request.method, request.path, status, extra={
            "method": request.method, "path": request.path, "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        })
        request_id_var.reset(token)
