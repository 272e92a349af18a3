"""Property tests over the OpenAPI document: schemathesis generates requests for every
operation (valid ones, and with ``negative`` deliberately invalid ones) against a live
server on each store (embedded, and PostgreSQL in a schema of its own) and asserts the
server never answers 5xx.

The app runs on a real port in a background thread (aiohttp is not ASGI); generation is
deterministic (``derandomize``) and bounded so the module stays well under a minute.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err

from server.app import create_app
from server.store import MemoryStore, Store
from server.store.migrate import migrate
from server.store.postgres import PostgresStore
from tests.server.api.conftest import make_settings
from tests.server.conftest import drop_schema

ADMIN_KEY = "gpk_schemathesis-admin-key-0123456789"
POSITIVE_EXAMPLES = 15
NEGATIVE_EXAMPLES = 8


async def _open_store(kind: str, database_url: str, schema: str) -> Store:
    if kind == "memory":
        return MemoryStore()
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn, schema)
    finally:
        await conn.close()
    return await PostgresStore.open(database_url, schema=schema, min_size=1, max_size=4)


@pytest.fixture(scope="module", params=[
    "memory", pytest.param("postgres", marks=pytest.mark.needs_postgres)])
def live_url(request: pytest.FixtureRequest) -> Iterator[str]:
    kind = str(request.param)
    database_url = str(request.getfixturevalue("database_url")) if kind == "postgres" else ""
    schema = f"geopush_schemathesis_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, object] = {}

    async def start() -> None:
        store = await _open_store(kind, database_url, schema)
        app = create_app(make_settings(admin_key=ADMIN_KEY, rate_admin_burst=100_000,
                                       rate_admin_per_s=10_000.0), store=store)
        holder["store"] = store
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        holder["runner"] = runner
        holder["port"] = runner.addresses[0][1]
        started.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=30)
    started.wait(30)
    try:
        yield f"http://127.0.0.1:{holder['port']}"
    finally:
        runner = holder["runner"]
        assert isinstance(runner, web.AppRunner)
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
        store = holder["store"]
        assert isinstance(store, (MemoryStore, PostgresStore))
        asyncio.run_coroutine_threadsafe(store.close(), loop).result(timeout=30)
        if kind == "postgres":
            asyncio.run_coroutine_threadsafe(drop_schema(database_url, schema),
                                             loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def _operations(live_url: str) -> list[APIOperation[Any, Any, Any, Any]]:
    """Every operation of the served document; one the schema cannot describe fails the
    test with its error."""
    schema = schemathesis.openapi.from_url(f"{live_url}/v1/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operations.append(result.ok())
    return operations


def test_openapi_document_loads_in_schemathesis(live_url: str) -> None:
    operations = _operations(live_url)
    assert len(operations) >= 25
    assert {op.label for op in operations} >= {"POST /v1/pings", "GET /v1/osmand",
                                               "POST /v1/venues/import", "PUT /v1/policy"}


@pytest.mark.parametrize(("mode", "examples"), [
    (GenerationMode.POSITIVE, POSITIVE_EXAMPLES),
    (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES),
])
def test_no_operation_answers_a_server_error(live_url: str, mode: GenerationMode,
                                             examples: int) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    failures: list[str] = []
    for operation in _operations(live_url):

        @given(case=operation.as_strategy(generation_mode=mode, headers=headers))
        @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case[Any]) -> None:
            response = case.call(base_url=live_url)
            case.validate_response(response, checks=[not_a_server_error])

        try:
            check()
        except Unsatisfiable:
            # Negative mode on an operation with no parameters and no body: there is
            # nothing to make invalid.
            assert mode is GenerationMode.NEGATIVE, operation.label
        except Exception as exc:  # collect every operation's failure, then report all
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
