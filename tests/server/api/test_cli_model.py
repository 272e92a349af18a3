"""``geopush model report``: the model versions as a table, from a running server or
straight from PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from server.auth import Role
from server.cli import main
from server.store import PostgresStore
from tests.server.api.conftest import Api, campaign_body
from triggers.decisions import Profile

pytestmark = pytest.mark.asyncio(loop_scope="session")

BEATEN = {"model": 0.31, "global_peak": 0.35, "events": 420, "promoted": False,
          "verdict": "worse than the global-peak baseline (0.3100 < 0.3500)"}
WINNER = {"model": 0.62, "global_peak": 0.35, "events": 400, "promoted": True,
          "verdict": "at least the global-peak baseline (0.6200 >= 0.3500)"}


async def test_model_report_prints_the_servers_versions(
        memory_api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    await memory_api.store.add_model("acme", "sendtime", b"one", WINNER, promote=True)
    await memory_api.store.add_model("acme", "sendtime", b"two", BEATEN, promote=False)
    url = str(memory_api.client.make_url("")).rstrip("/")
    key = memory_api.keys[("acme", Role.MANAGER)]
    rc = await asyncio.to_thread(main, ["model", "report", "--target", url, "--key", key])
    lines = capsys.readouterr().out.splitlines()
    assert rc == 0
    assert lines[0].split()[:3] == ["kind", "ver", "created"]
    assert lines[1].split()[:2] == ["sendtime", "2"]
    assert "0.3100" in lines[1] and " no " in lines[1] and "worse than" in lines[1]
    assert lines[2].split()[:2] == ["sendtime", "1"] and " yes " in lines[2]
    rc = await asyncio.to_thread(main, ["model", "report", "--target", url, "--key", "bad"])
    assert rc == 2 and "401" in capsys.readouterr().err


@pytest.mark.needs_postgres
async def test_model_report_reads_the_database(
        pg_store: PostgresStore, database_url: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    await pg_store.ensure_tenant("acme", name="Acme")
    await pg_store.add_model("acme", "interests", b"i", BEATEN, promote=False)
    rc = await asyncio.to_thread(main, ["model", "report", "--database-url", database_url,
                                        "--schema", pg_store.schema, "--tenant", "acme"])
    out = capsys.readouterr().out
    assert rc == 0
    assert out.splitlines()[1].split()[:2] == ["interests", "1"]


async def test_sendtime_preview_prints_the_servers_counts(
        memory_api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    await memory_api.store.put_profile("acme", Profile(user_id="newcomer"))
    await memory_api.call("POST", "/v1/campaigns", expect=201, json_body=campaign_body(
        "fair", venues={}, trigger={"scheduled": {"times": ["10:00"], "best_time": {
            "fallback": "10:30", "window": "09:00-21:00"}}}))
    url = str(memory_api.client.make_url("")).rstrip("/")
    key = memory_api.keys[("acme", Role.MANAGER)]
    rc = await asyncio.to_thread(main, ["sendtime", "preview", "--campaign", "fair",
                                        "--target", url, "--key", key])
    lines = capsys.readouterr().out.splitlines()
    assert rc == 0
    assert lines[0] == ("campaign fair: 1 users, 0 with enough send-time data, 1 at the "
                        "fallback 10:30 (window 09:00-21:00)")
    assert lines[2].split() == ["10:30", "1"]
