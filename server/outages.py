"""Failures that repeat while the database is down, logged once when they start and
once when they end, and telling an unreachable database from a bug.

Kept apart from :mod:`server.logs` (the service's log format and request ids, which
needs aiohttp), so that the core's rebuilds (``server.tenant_core``, also used by
commands that run without the service) log outages the same way without importing it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from server.store.errors import StoreUnavailableError

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


def summary(exc: BaseException) -> str:
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
            self._what, step, summary(exc), exc_info=None if quiet else exc,
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
