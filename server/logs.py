"""Structured logs: one JSON object per line, each carrying the request id.

The request id is taken from the client's ``X-Request-Id`` (when it looks like one) or
made up, kept in a context variable for the request's task, written into every record
logged while the request runs, and echoed in the response header.

Background loops log a failure that repeats (the database is down: every round fails
the same way) through :class:`FailureLog`: one line when it starts, one when it ends.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

import asyncpg
from aiohttp import web

from server.settings import LogFormat
from server.store.errors import StoreUnavailableError

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
        record.msg = f"{record.getMessage()}: {_summary(record.exc_info[1])}"
        record.args = None
        record.exc_info = None
    return True


_CONNECTION: tuple[type[BaseException], ...] = (
    OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError)
"""The database cannot be reached, or is shutting down or starting up."""


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) says the database cannot be
    reached, rather than a bug: such a failure is logged without a traceback. An error
    the database itself answered (a bad statement) is a bug, though the store reports
    it as unavailable too."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 8:  # short; a cycle must not loop forever
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    if any(isinstance(e, _CONNECTION) for e in chain):
        return True
    if any(isinstance(e, asyncpg.PostgresError) for e in chain):
        return False
    return any(isinstance(e, StoreUnavailableError) for e in chain)


def _summary(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class _Streak:
    failures: int
    since: float


class FailureLog:
    """A background loop's repeating failures, logged when they start and when they end.

    While the database is down every round of a loop fails the same way; a traceback
    per round (the timer loop's every second, each dispatcher's twice a second) buries
    everything else. So the first failure of a streak is one line saying what failed
    and why (with the traceback only when it is not the database being unreachable:
    then it is a bug, and needs one), the next ones are only counted, and the first
    success after them is one line with the count and how long it lasted.

    ``what`` names the loop; each call names the step (``listing tenants``, ``tenant
    acme``), and each step has a streak of its own. Runs in the event loop.
    """

    def __init__(self, logger: logging.Logger, what: str, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log = logger
        self._what = what
        self._clock = clock
        self._streaks: dict[str, _Streak] = {}

    def failed(self, step: str, exc: BaseException) -> None:
        """``step`` failed with ``exc``; logged if it worked last time."""
        streak = self._streaks.get(step)
        if streak is not None:
            streak.failures += 1
            return
        self._streaks[step] = _Streak(1, self._clock())
        quiet = is_unavailable(exc)
        self._log.log(
            logging.WARNING if quiet else logging.ERROR,
            "%s: %s failed: %s; retrying, and logging once when it works again",
            self._what, step, _summary(exc), exc_info=None if quiet else exc,
            extra={"outage": "started", "loop": self._what, "step": step})

    def succeeded(self, step: str) -> None:
        """``step`` worked; logged if it failed last time."""
        if not self._streaks:
            return
        streak = self._streaks.pop(step, None)
        if streak is None:
            return
        lasted_s = self._clock() - streak.since
        self._log.warning(
            "%s: %s works again after %d failed attempt%s over %.1f s", self._what, step,
            streak.failures, "" if streak.failures == 1 else "s", lasted_s,
            extra={"outage": "ended", "loop": self._what, "step": step,
                   "failures": streak.failures, "duration_s": round(lasted_s, 3)})

    def failing(self, step: str) -> bool:
        return step in self._streaks


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
