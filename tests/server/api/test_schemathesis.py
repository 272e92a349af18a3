"""Property tests over the OpenAPI document: schemathesis generates requests for every
operation (valid ones, and with ``negative`` deliberately invalid ones) against a live
server on each store (embedded, and PostgreSQL in a schema of its own) and asserts the
server never answers 5xx.

A third pass sends what a hostile client would: the generated JSON bodies with a number
that overflows to infinity (``1e400``, valid JSON) and each body under every
``Content-Encoding`` variation (gzip and deflate, valid and broken, ``br``, ``zstd``,
unknown codings); no answer may be a 5xx, and every answer must be JSON a strict parser
reads (no ``NaN`` / ``Infinity``).

The app runs on a real port in a background thread (aiohttp is not ASGI); generation is
deterministic (``derandomize``) and bounded so the module stays well under a minute.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import threading
import uuid
import zlib
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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
HOSTILE_EXAMPLES = 20


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


READABLE: dict[str, Any] = {
    "identity": lambda body: body,
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "gzip, gzip": lambda body: gzip.compress(gzip.compress(body)),
}
"""``Content-Encoding`` values with the body encoded as they say."""
UNREADABLE: dict[str, Any] = {
    "gzip": lambda body: gzip.compress(body)[: max(1, len(body) // 3)],  # truncated
    "deflate": lambda body: b"\x78\x9c" + body,  # a zlib header, then no deflate data
    "x-gzip": lambda body: body,  # says gzip, is not
    "br": lambda body: body,
    "zstd": lambda body: body,
    "compress": lambda body: body,
    "x-geopush-unknown": lambda body: body,
}
"""``Content-Encoding`` values with a body that is not so encoded, or a coding the
server does not read."""
ENCODINGS = st.one_of(
    st.sampled_from([(name, READABLE[name]) for name in sorted(READABLE)]),
    st.sampled_from([(name, UNREADABLE[name]) for name in sorted(UNREADABLE)]))

_INF = float("inf")


def _numbers(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of the numbers in a JSON document (not bools), in document order."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _numbers(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _numbers(v, (*path, i))]
    return []


def _with_infinity(value: Any, path: tuple[Any, ...], sign: float) -> Any:
    if not path:
        return sign * _INF
    head, *rest = path
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = _with_infinity(value[head], tuple(rest), sign)
    return copy


def overflowing(body: Any, data: st.DataObject) -> bytes:
    """``body`` as JSON with one of its numbers (or, with none, a new member) written as
    ``1e400`` / ``-1e400``: valid JSON that overflows every 64-bit float."""
    sign = data.draw(st.sampled_from([1.0, -1.0]), label="sign")
    paths = _numbers(body)
    if paths:
        body = _with_infinity(body, data.draw(st.sampled_from(paths), label="number"), sign)
    elif isinstance(body, dict):
        body = {**body, "weight": sign * _INF}
    else:
        body = [body, sign * _INF]
    return json.dumps(body).replace("Infinity", "1e400").encode()


def strict_json(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} in an answer: not JSON")
    return json.loads(text, parse_constant=refuse)


def test_no_operation_answers_a_server_error_to_hostile_bodies(live_url: str) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    failures: list[str] = []
    session = requests.Session()
    tried = 0
    for operation in _operations(live_url):
        media_type = next((m for m in operation.get_request_payload_content_types()
                           if "json" in m), None)
        if media_type is None:
            continue
        tried += 1

        @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE,
                                          headers=headers, media_type=media_type),
               data=st.data())
        @settings(max_examples=HOSTILE_EXAMPLES, derandomize=True, deadline=None,
                  database=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case[Any], data: st.DataObject) -> None:
            kwargs = case.as_transport_kwargs(base_url=live_url)
            raw = overflowing(kwargs.get("json"), data)
            coding, encode = data.draw(ENCODINGS, label="encoding")
            sent_headers = {**kwargs.get("headers", {}), "Content-Type": "application/json",
                            "Content-Encoding": coding}
            response = session.request(
                kwargs["method"], kwargs["url"], params=kwargs.get("params"),
                cookies=kwargs.get("cookies"), headers=sent_headers, data=encode(raw),
                timeout=30)
            assert response.status_code < 500, (coding, raw[:300], response.text[:300])
            strict_json(response.text)

        try:
            check()
        except Exception as exc:  # collect every operation's failure, then report all
            failures.append(f"{operation.label}: {exc}")
    session.close()
    assert tried >= 10
    assert not failures, "\n\n".join(failures)
