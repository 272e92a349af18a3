"""Property tests over the OpenAPI document: schemathesis generates requests for every
operation (valid ones, and with ``negative`` deliberately invalid ones) against a live
server on the embedded store and asserts the server never answers 5xx.

The app runs on a real port in a background thread (aiohttp is not ASGI); generation is
deterministic (``derandomize``) and bounded so the module stays well under a minute.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from server.app import create_app
from server.store import MemoryStore
from tests.server.api.conftest import make_settings

ADMIN_KEY = "gpk_schemathesis-admin-key-0123456789"
POSITIVE_EXAMPLES = 15
NEGATIVE_EXAMPLES = 8


@pytest.fixture(scope="module")
def live_url() -> Iterator[str]:
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, object] = {}

    async def start() -> None:
        app = create_app(make_settings(admin_key=ADMIN_KEY, rate_admin_burst=100_000,
                                       rate_admin_per_s=10_000.0), store=MemoryStore())
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
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def test_openapi_document_loads_in_schemathesis(live_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{live_url}/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25
    assert {op.label for op in operations} >= {"POST /v1/pings", "GET /v1/osmand",
                                               "POST /v1/venues/import", "PUT /v1/policy"}


@pytest.mark.parametrize(("mode", "examples"), [
    (GenerationMode.POSITIVE, POSITIVE_EXAMPLES),
    (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES),
])
def test_no_operation_answers_a_server_error(live_url: str, mode: GenerationMode,
                                             examples: int) -> None:
    schema = schemathesis.openapi.from_url(f"{live_url}/v1/openapi.json")
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode, headers=headers))
        @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
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
