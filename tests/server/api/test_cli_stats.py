"""``geopush stats``: the same table from the database and from a running server."""

from __future__ import annotations

import asyncio

import pytest

from server.auth import Role
from server.cli import main
from server.store import PostgresStore
from tests.server.api.conftest import (
    Api,
    FakeClock,
    campaign_body,
    ping,
    start_api,
    venue_feature,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _one_clicked_delivery(api: Api) -> None:
    await api.call("PUT", "/v1/venues/senate", json_body=venue_feature(), expect=201)
    await api.call("PUT", "/v1/campaigns/hello", expect=201,
                   json_body=campaign_body(status="active"))
    now = api.clock.now
    _, body = await api.call("POST", "/v1/pings", role=Role.SDK, expect=200, json_body={
        "pings": [ping(ts=now - 20), ping(ts=now - 10)]})
    [delivery] = body["deliveries"]
    await api.call("POST", f"/v1/deliveries/{delivery['id']}/feedback",
                   json_body={"kind": "clicked"}, expect=200)


async def test_stats_command_prints_the_servers_table(
    memory_api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    await _one_clicked_delivery(memory_api)
    url = str(memory_api.client.make_url("")).rstrip("/")
    key = memory_api.keys[("acme", Role.MANAGER)]
    rc = await asyncio.to_thread(main, ["stats", "--campaign", "hello", "--target", url,
                                        "--key", key])
    out = capsys.readouterr().out
    assert rc == 0
    assert out.startswith("campaign hello: 1 deliveries, 0 sent")
    assert "control" in out and "variant" in out
    rc = await asyncio.to_thread(main, ["stats", "--campaign", "nope", "--target", url,
                                        "--key", key])
    assert rc == 2 and "404" in capsys.readouterr().err


@pytest.mark.needs_postgres
async def test_stats_command_reads_the_database(
    pg_store: PostgresStore, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    client, api = await start_api(pg_store, FakeClock())
    try:
        await _one_clicked_delivery(api)
    finally:
        await client.close()
    rc = await asyncio.to_thread(main, ["stats", "--campaign", "hello", "--database-url",
                                        database_url, "--schema", pg_store.schema,
                                        "--tenant", "acme", "--json"])
    out = capsys.readouterr().out
    assert rc == 0, capsys.readouterr().err
    assert '"by_variant"' in out and '"clicked": 1' in out
