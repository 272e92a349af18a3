"""Store fixtures shared by the server tests.

- ``memory_store``: a fresh :class:`MemoryStore` per test;
- ``pg_schema``: one PostgreSQL schema per test session (migrated once, dropped at the
  end), so parallel sessions and other suites never see each other's rows;
- ``pg_store``: a :class:`PostgresStore` on that schema, every table truncated first;
- ``store``: parametrized over both, the contract suite's fixture (the PostgreSQL
  case carries ``needs_postgres``).

Async fixtures run in the session event loop (``asyncio_default_fixture_loop_scope``);
test modules that use them set ``pytestmark = pytest.mark.asyncio(loop_scope="session")``
so that a pool is only ever used on the loop that created it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest

from server.store import MemoryStore, PostgresStore, Store
from server.store.migrate import migrate, quote_ident

TENANT = "acme"
OTHER_TENANT = "globex"


@pytest.fixture
async def memory_store() -> AsyncIterator[MemoryStore]:
    store = MemoryStore()
    yield store
    await store.close()


@pytest.fixture(scope="session")
async def pg_schema(database_url: str) -> AsyncIterator[str]:
    schema = f"geopush_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn, schema)
    finally:
        await conn.close()
    yield schema
    await drop_schema(database_url, schema)


async def drop_schema(database_url: str, schema: str) -> None:
    """Drop a test schema and everything in it (on a connection of its own)."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
    finally:
        await conn.close()


async def execute(database_url: str, schema: str, sql: str, *args: Any) -> Any:
    """``sql`` in ``schema`` on a connection of its own; the first value of the first
    row (``None`` when there is none)."""
    conn = await asyncpg.connect(database_url, server_settings={"search_path": schema})
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def truncate_all(store: PostgresStore) -> None:
    """Empty every table of the store's schema but the migration history."""
    async with store._pool.acquire() as conn:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = $1"
            " AND tablename <> 'schema_migrations'", store.schema)
        names = ", ".join(f"{quote_ident(store.schema)}.{quote_ident(r[0])}" for r in tables)
        await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


@pytest.fixture
async def pg_store(database_url: str, pg_schema: str) -> AsyncIterator[PostgresStore]:
    store = await PostgresStore.open(database_url, schema=pg_schema, min_size=1, max_size=4)
    await truncate_all(store)
    yield store
    await store.close()


@pytest.fixture
async def second_store(database_url: str, pg_schema: str,
                       pg_store: PostgresStore) -> AsyncIterator[PostgresStore]:
    """Node B's own pool on node A's schema (``pg_store`` truncated it first)."""
    store = await PostgresStore.open(database_url, schema=pg_schema, min_size=1, max_size=4,
                                     apply_migrations=False)
    yield store
    await store.close()


class ManualClock:
    """Wall time in epoch seconds that a test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def open_clocked(store: Store, database_url: str, clock: Callable[[], float]) -> Store:
    """Another store of ``store``'s kind (PostgreSQL: a pool of its own on the same
    schema) that stamps its rows with ``clock``. The caller closes it."""
    if isinstance(store, PostgresStore):
        return await PostgresStore.open(database_url, schema=store.schema, min_size=1,
                                        max_size=2, apply_migrations=False, clock=clock)
    return MemoryStore(clock=clock)


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.needs_postgres)])
def store(request: pytest.FixtureRequest) -> Store:
    """Each contract test runs once per implementation."""
    # Sync on purpose: getfixturevalue of an async fixture must not run inside the loop.
    name = "memory_store" if request.param == "memory" else "pg_store"
    found: Store = request.getfixturevalue(name)
    return found


@pytest.fixture
async def tenant(store: Store) -> str:
    """A tenant that exists, plus another one to prove isolation against."""
    await store.ensure_tenant(TENANT, name="Acme")
    await store.ensure_tenant(OTHER_TENANT, name="Globex")
    return TENANT
