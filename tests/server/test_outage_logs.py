"""While the database is down every background round fails the same way; the log got a
traceback per round (about three a second from the timer loop and a dispatcher). Now
each loop logs one line when a failure starts, saying what failed, and one when it
works again, with how many attempts failed; no traceback for an unreachable database.

The outage is real: the service talks to PostgreSQL through a relay that the test cuts
and restores (``tests/server/outage.py``)."""

from __future__ import annotations

import logging
from collections import Counter

import asyncpg
import pytest

from server.api.context import METRICS, OUTBOX
from server.logs import configure_logging
from server.outages import FailureLog, is_unavailable
from server.settings import LogFormat
from server.store import PostgresStore
from server.store.errors import StoreUnavailableError
from tests.server.api.conftest import serving
from tests.server.conftest import truncate_all
from tests.server.outage import database_link
from tests.server.waiting import eventually

ROUNDS = 20
"""Failed rounds of each loop the outage lasts (every 20 ms: about half a second)."""


def _outage_lines(records: list[logging.LogRecord], state: str) -> Counter[tuple[str, str]]:
    """(loop, step) of each FailureLog line of ``state`` (``started`` / ``ended``)."""
    return Counter((getattr(r, "loop", ""), getattr(r, "step", "")) for r in records
                   if getattr(r, "outage", None) == state)


@pytest.mark.needs_postgres
@pytest.mark.asyncio(loop_scope="session")
async def test_an_outage_is_one_line_when_it_starts_and_one_when_it_ends(
    database_url: str, pg_schema: str, caplog: pytest.LogCaptureFixture,
) -> None:
    async with database_link(database_url) as link:
        store = await PostgresStore.open(link.url, schema=pg_schema, min_size=1,
                                         max_size=4, apply_migrations=False)
        await truncate_all(store)
        try:
            async with serving(store, timer_interval_s=0.02, outbox_workers=1,
                               outbox_interval_s=0.02) as api:
                app = api.client.app
                assert app is not None
                dispatcher = app[OUTBOX].dispatchers[0].name
                registry = app[METRICS].registry

                def errors(name: str) -> float:
                    return registry.get_sample_value(f"geopush_{name}_errors_total") or 0.0

                with caplog.at_level(logging.INFO, logger="geopush"):
                    timers_before, outbox_before = errors("timer"), errors("outbox")
                    link.cut()
                    await eventually(lambda: errors("timer") - timers_before >= ROUNDS
                                     and errors("outbox") - outbox_before >= ROUNDS)
                    during = list(caplog.records)
                    link.restore()
                    # Every streak that started ends (the listener reconnects last,
                    # after its backoff).
                    await eventually(lambda: _outage_lines(caplog.records, "ended")
                                     == _outage_lines(caplog.records, "started"))
        finally:
            await store.close()

    ours = [r for r in during if r.name.startswith("geopush")]
    assert not [r for r in ours if r.exc_info], "a traceback while the database was down"
    started = _outage_lines(ours, "started")
    assert started[("timer loop", "listing tenants")] == 1
    assert all(count == 1 for count in started.values()), started
    loud = [r.getMessage() for r in ours if r.levelno >= logging.WARNING
            and not hasattr(r, "outage") and "listener lost" not in r.getMessage()]
    assert not loud, loud
    ended = [r for r in caplog.records if getattr(r, "outage", None) == "ended"]
    for loop in ("timer loop", dispatcher):
        # Each failed round counted once, in the streak of the step that failed.
        assert sum(getattr(r, "failures", 0) for r in ended
                   if getattr(r, "loop", "") == loop) >= ROUNDS
    timer_end = next(r for r in ended if getattr(r, "loop", "") == "timer loop"
                     and getattr(r, "step", "") == "listing tenants")
    assert timer_end.getMessage().startswith(
        f"timer loop: listing tenants works again after {timer_end.__dict__['failures']} "
        "failed attempts over")


def test_a_bug_is_logged_with_its_traceback_once_and_each_step_has_its_own_streak(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    failures = FailureLog(logging.getLogger("geopush.test"), "timer loop",
                          clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="geopush.test"):
        for _ in range(5):
            failures.failed("tenant acme", KeyError("visit_id"))
            failures.failed("tenant globex", StoreUnavailableError("PostgreSQL: gone"))
            now[0] += 1.0
        failures.succeeded("tenant globex")
        failures.succeeded("tenant globex")
    bug, down, back = caplog.records
    assert (bug.levelno, bug.exc_info is not None) == (logging.ERROR, True)
    assert "tenant acme failed: KeyError: 'visit_id'" in bug.getMessage()
    assert (down.levelno, down.exc_info) == (logging.WARNING, None)
    assert back.getMessage() == ("timer loop: tenant globex works again after 5 failed "
                                 "attempts over 5.0 s")
    assert failures.failing("tenant acme") and not failures.failing("tenant globex")


@pytest.mark.parametrize(("exc", "unavailable"), [
    (StoreUnavailableError("PostgreSQL: connection refused"), True),
    (ConnectionRefusedError(111, "Connection refused"), True),
    (TimeoutError(), True),
    (asyncpg.exceptions.AdminShutdownError("terminating connection"), True),
    (asyncpg.exceptions.UndefinedTableError('relation "x" does not exist'), False),
    (KeyError("x"), False),
], ids=repr)
def test_an_unreachable_database_is_told_from_a_bug(exc: BaseException,
                                                    unavailable: bool) -> None:
    """The store reports every PostgreSQL error as unavailable; one the database
    answered (a bad statement) is still a bug."""
    wrapped = StoreUnavailableError(f"PostgreSQL: {exc}")
    wrapped.__cause__ = exc
    assert is_unavailable(exc) is unavailable
    assert is_unavailable(wrapped) is (unavailable
                                       or not isinstance(exc, asyncpg.PostgresError))


def test_the_pool_reconnecting_logs_a_line_without_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """asyncpg's pool logs every failed attempt to refill itself (backoff up to a
    minute) with a traceback; ``geopush serve`` keeps the line and drops the
    traceback of a connection error."""
    configure_logging(LogFormat.TEXT)
    pool_log = logging.getLogger("asyncpg.pool")
    try:
        try:
            raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")
        except OSError:
            pool_log.warning("Failed to restore the pool connection floor; retrying",
                             exc_info=True)
        err = capsys.readouterr().err
    finally:
        for name in ("geopush", "aiohttp", "asyncpg"):
            logger = logging.getLogger(name)
            logger.handlers.clear()
            logger.propagate = True
            logger.setLevel(logging.NOTSET)
        pool_log.filters.clear()
    assert "Failed to restore the pool connection floor; retrying: ConnectionRefusedError" in err
    assert "Traceback" not in err
