"""Two real OS processes, one PostgreSQL database: no cap counted twice, no push sent twice.

Each user walks into Forum, on past Rautatientori into Kauppakeskus Kluuvi (both malls).
Worker A ingests the first part of every timeline, worker B the second, overlapping by
150 s, in shuffled groups, at the same time. Without the per-user lock both would
decide on the same empty ledger: A sends "hello" for the Forum ENTER, B for its own
ENTER, two pushes against a cap of one. With it, whichever commits second sees the
first's ledger row (or its pings are late), so each user gets exactly one "hello" and
one "bye" (the EXIT campaign, whose timer both workers then compete to fire).
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter

import pytest

from server.store import PolicyRecord, PostgresStore
from tests.conftest import ROOT
from tests.decisions.builders import campaign, profile
from tests.server.pipeline.two_process_worker import USERS
from tests.triggers.builders import helsinki_venues
from triggers.decisions import TenantPolicy

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.needs_postgres]

TENANT = "acme"
ONE_A_DAY = {"per_user": {"count": 1, "period_s": 86_400}}


async def _setup(store: PostgresStore) -> None:
    await store.ensure_tenant(TENANT)
    await store.put_venues(TENANT, list(helsinki_venues()))
    await store.put_policy(TENANT, PolicyRecord(TenantPolicy(
        quiet_hours=None, max_per_day=None, min_gap_s=0, fatigue_after_ignored=None)))
    for campaign_id, trigger in (("hello", "enter"), ("bye", "exit")):
        await store.create_campaign(TENANT, campaign(
            campaign_id, trigger={"event": trigger}, venues={"kinds": ["mall"]},
            caps=ONE_A_DAY, schedule={"respect_opening_hours": False}))
    for user_id in USERS:
        await store.put_profile(TENANT, profile(user_id))


async def _expect(proc: asyncio.subprocess.Process, word: str) -> None:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
    assert line.decode().strip() == word, line


async def test_two_processes_never_double_count_a_cap_nor_send_twice(
    pg_store: PostgresStore, database_url: str
) -> None:
    await _setup(pg_store)
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.server.pipeline.two_process_worker",
            database_url, pg_store.schema, TENANT, which, cwd=ROOT,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        for which in ("A", "B")
    ]
    try:
        for step in ("ready", "ingested"):
            for proc in procs:
                await _expect(proc, step)
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

    deliveries = await pg_store.list_deliveries(TENANT, limit=10_000)
    per_user = Counter((d.user_id, d.campaign_id) for d in deliveries)
    expected = {(u, c): 1 for u in USERS for c in ("hello", "bye")}
    assert dict(per_user) == expected
    async with pg_store._pool.acquire() as conn:
        ledger = await conn.fetch(
            "SELECT user_id, campaign_id, count(*) AS n FROM ledger WHERE tenant_id = $1"
            " AND NOT control GROUP BY 1, 2", TENANT)
        keys = await conn.fetchval(
            "SELECT count(*) = count(DISTINCT idempotency_key) FROM deliveries")
    assert {(r["user_id"], r["campaign_id"]): r["n"] for r in ledger} == expected
    assert keys
