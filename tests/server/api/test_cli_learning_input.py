"""``geopush model report`` and ``geopush sendtime preview`` with odd arguments: a
``--target`` that is no URL or no geopush server, a key HTTP cannot carry, a database
URL asyncpg cannot read, a schema without geopush's tables. Each is one line naming the
option, never a traceback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from server.auth import Role
from server.cli import main
from tests.server.api.conftest import Api

pytestmark = pytest.mark.asyncio(loop_scope="session")

REPORT = ["model", "report"]
PREVIEW = ["sendtime", "preview", "--campaign", "fair"]


async def geopush(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = await asyncio.to_thread(main, args)
    return status, capsys.readouterr().err


@pytest.fixture
async def not_geopush() -> AsyncIterator[str]:
    """A web server that answers every GET 200 with a page, or with a JSON list."""
    async def page(request: web.Request) -> web.Response:
        if "preview" in request.path:
            return web.json_response([1, 2])
        return web.Response(text="<html>hello</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    server = TestServer(app)
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@pytest.mark.parametrize("command", [REPORT, PREVIEW], ids=["report", "preview"])
@pytest.mark.parametrize(("target", "said"), [
    ("http://[::1", "--target: not a URL: 'http://[::1'"),
    ("http://exa\x00mple.org", "--target: not a URL"),
    ("ftp://example.org", "--target: cannot reach ftp://example.org"),
    ("127.0.0.1:9", "--target: cannot reach 127.0.0.1:9"),
], ids=["open-bracket", "nul", "ftp", "no-scheme"])
async def test_a_target_that_is_no_http_url_is_named_not_a_traceback(
        capsys: pytest.CaptureFixture[str], command: list[str], target: str,
        said: str) -> None:
    status, err = await geopush([*command, "--target", target, "--key", "k"], capsys)
    assert status == 2
    assert said in err and "Traceback" not in err


@pytest.mark.parametrize("command", [REPORT, PREVIEW], ids=["report", "preview"])
async def test_a_key_that_is_not_printable_ascii_is_named(
        memory_api: Api, capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    url = str(memory_api.client.make_url("")).rstrip("/")
    for key in ("κλειδί", "k\r\nX-Injected: 1"):
        status, err = await geopush([*command, "--target", url, "--key", key], capsys)
        assert status == 2
        assert "--key: an API key is printable ASCII" in err


@pytest.mark.parametrize(("command", "said"), [
    (REPORT, "with something other than JSON"), (PREVIEW, "with JSON that is not an object"),
], ids=["report", "preview"])
async def test_a_target_that_is_not_a_geopush_server_is_named(
        not_geopush: str, capsys: pytest.CaptureFixture[str], command: list[str],
        said: str) -> None:
    status, err = await geopush([*command, "--target", not_geopush, "--key", "k"], capsys)
    assert status == 2
    assert f"--target: {not_geopush} answered" in err and said in err


async def test_the_preview_of_an_odd_campaign_id_is_the_servers_answer(
        memory_api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    url = str(memory_api.client.make_url("")).rstrip("/")
    key = memory_api.keys[("acme", Role.MANAGER)]
    for campaign, said in (("a/b", "404: no campaign 'a/b'"), ("母婴", "404: no campaign"),
                           ("x" * 300, "422: id must be 1 to 256 characters")):
        status, err = await geopush(["sendtime", "preview", "--campaign", campaign,
                                     "--target", url, "--key", key], capsys)
        assert status == 2
        assert f"--campaign: {said}" in err


async def test_a_database_url_asyncpg_cannot_read_is_named(
        capsys: pytest.CaptureFixture[str]) -> None:
    status, err = await geopush([*REPORT, "--database-url", "not-a-url"], capsys)
    assert status == 2
    assert "--database-url: cannot connect to PostgreSQL: invalid DSN" in err


@pytest.mark.needs_postgres
async def test_a_schema_without_geopush_tables_is_named(
        database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, err = await geopush([*REPORT, "--database-url", database_url, "--schema",
                                 "no_such_schema_here"], capsys)
    assert status == 2
    assert '--schema: PostgreSQL: relation "models" does not exist' in err
