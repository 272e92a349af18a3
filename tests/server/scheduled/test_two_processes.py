"""Two real OS processes, one PostgreSQL database, one scheduled slot: one push per
(campaign, user, slot). Every global rule is off (no cap, no gap), so nothing but the
per-user locks and the keyed inserts stands between two nodes walking the same pages."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter

import pytest

from server.store import PostgresStore
from tests.conftest import ROOT
from tests.decisions.builders import at, profile
from tests.server.scheduled.builders import CAMPAIGN, HELSINKI_MOTHERS, TENANT, setup_case

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.needs_postgres]

MORE_MOTHERS = [f"hel-m{i:02d}" for i in range(40)]


async def _expect(proc: asyncio.subprocess.Process, word: str) -> None:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
    assert line.decode().strip() == word, line


async def test_two_processes_send_a_slot_once_per_user(
    pg_store: PostgresStore, database_url: str
) -> None:
    await setup_case(pg_store, times=["10:00"])
    for user_id in MORE_MOTHERS:
        await pg_store.put_profile(TENANT, profile(user_id, tags=["mother_baby"]))
    now = str(at("2026-12-07 10:00"))
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.server.scheduled.two_process_worker",
            database_url, pg_store.schema, TENANT, now, cwd=ROOT,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        for _ in range(2)
    ]
    try:
        for proc in procs:
            await _expect(proc, "ready")
        for proc in procs:  # release both at once
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        for proc in procs:
            await _expect(proc, "done")
            assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    mothers = sorted(HELSINKI_MOTHERS + MORE_MOTHERS)
    deliveries = await pg_store.list_deliveries(TENANT, limit=10_000)
    assert Counter(d.user_id for d in deliveries) == dict.fromkeys(mothers, 1)
    assert {d.campaign_id for d in deliveries} == {CAMPAIGN}
    async with pg_store._pool.acquire() as conn:
        ledger = await conn.fetch(
            "SELECT user_id, count(*) AS n FROM ledger WHERE tenant_id = $1 GROUP BY 1",
            TENANT)
        decisions = await conn.fetchval(
            "SELECT count(*) FROM decisions WHERE tenant_id = $1 AND user_id LIKE 'hel-%'",
            TENANT)
    assert {r["user_id"]: r["n"] for r in ledger} == dict.fromkeys(mothers, 1)
    assert decisions == len(mothers)
