"""Scheduled fan-out benchmark: one slot of a scheduled campaign to its whole audience on
PostgreSQL — every decision made and every delivery queued — and the memory it takes.

Per audience size N (default 100,000 and 1,000,000; ``--quick`` 10,000 and 50,000;
``--users N [N ...]`` any), in a throwaway schema: N profiles (tag ``mother_baby``,
zone Asia/Shanghai) are written with one ``INSERT ... SELECT generate_series`` (not timed),
then :func:`server.scheduler.schedule_round` runs the 10:00 slot of a campaign whose
audience is every one of them, with the tenant's default rules (daily cap, min gap,
quiet hours: 10:00 is outside them), so every user is decided and sent to. Timed: the
whole fan-out (keyset pages of profiles, per-user locks, ``decide``, the keyed inserts of
decisions, ledger entries and deliveries, the slot cursor after each page). Checked
after: N decisions, N ledger entries and N pending deliveries.

Printed per size: seconds, users/s, and the peak RSS the fan-out added
(:class:`~tests.bench._common.PeakRss`): flat in N means bounded memory. The ratio rows
compare each size with the smallest one, measured in the same run. Target (the issue):
1,000,000 users within 600 s. PostgreSQL from ``TEST_DATABASE_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``).

Usage: ``python -m tests.bench.bench_scheduled [--quick] [--users N ...] [--page N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg

from server.scheduler import schedule_round
from server.store import PolicyRecord, PostgresStore
from server.store.migrate import quote_ident
from server.tenant_core import TenantCores
from tests.bench._common import PeakRss, format_table
from triggers.decisions import Campaign, TenantPolicy

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
SIZES = (100_000, 1_000_000)
QUICK_SIZES = (10_000, 50_000)
TARGET_S = {1_000_000: 600.0}
ZONE = "Asia/Shanghai"
SLOT_AT = datetime(2026, 12, 7, 10, 0, tzinfo=ZoneInfo(ZONE)).timestamp()


def _campaign() -> Campaign:
    return Campaign.model_validate({
        "id": "mother-baby-daily",
        "trigger": {"scheduled": {"times": ["10:00", "15:00"]}},
        "audience": {"any_of_tags": ["mother_baby"]},
        "variants": [{"id": "warm", "title": "早安，{{ user.first_name }}",
                      "body": "给宝宝换上柔软的新衣，开始温柔的一天。", "locale": "zh-CN"}],
    })


async def fill_audience(store: PostgresStore, tenant: str, users: int) -> float:
    """N profiles of the audience, written by the database itself; the seconds it took."""
    t0 = time.perf_counter()
    await store.ensure_tenant(tenant)
    await store.put_policy(tenant, PolicyRecord(TenantPolicy(default_timezone=ZONE)))
    await store.create_campaign(tenant, _campaign())
    async with store._pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO profiles (tenant_id, user_id, body, updated_at)"
            " SELECT $1, 'u' || lpad(g::text, 7, '0'), jsonb_build_object("
            "  'user_id', 'u' || lpad(g::text, 7, '0'), 'tags', jsonb_build_array('mother_baby'),"
            "  'attributes', jsonb_build_object('timezone', $3::text, 'first_name', '梅',"
            "   'locale', 'zh-CN', 'age', 20 + g % 25)), 0"
            " FROM generate_series(1, $2) AS g", tenant, users, ZONE)
        await conn.execute("ANALYZE profiles")
    return time.perf_counter() - t0


async def count_rows(store: PostgresStore, tenant: str) -> tuple[int, int, int]:
    async with store._pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM decisions WHERE tenant_id = $1),"
            " (SELECT count(*) FROM ledger WHERE tenant_id = $1),"
            " (SELECT count(*) FROM deliveries WHERE tenant_id = $1 AND status = 'pending')",
            tenant)
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


async def _one(store: PostgresStore, users: int, page: int) -> dict[str, float]:
    tenant = f"bench-{users}"
    fill_s = await fill_audience(store, tenant, users)
    cores = TenantCores()
    await cores.get(store, tenant)
    with PeakRss() as rss:
        t0 = time.perf_counter()
        result = await schedule_round(store, cores, tenant, SLOT_AT, page_users=page,
                                      max_pages=1 << 40)
        wall = time.perf_counter() - t0
    decisions, ledger, pending = await count_rows(store, tenant)
    assert not result.pending
    assert decisions == ledger == pending == users, (decisions, ledger, pending)
    return {"users": users, "fill_s": fill_s, "wall_s": wall, "per_s": users / wall,
            "peak_mb": rss.peak_mb, "retained_mb": rss.retained_mb}


async def run(sizes: tuple[int, ...], page: int) -> list[dict[str, float]]:
    dsn = os.environ.get("TEST_DATABASE_URL", DEFAULT_PG)
    schema = f"geopush_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    store = await PostgresStore.open(dsn, schema=schema, min_size=2, max_size=4)
    rows: list[dict[str, float]] = []
    try:
        for users in sizes:
            rows.append(await _one(store, users, page))
            print(f"  {users:,} users: {rows[-1]['wall_s']:.1f} s", flush=True)
    finally:
        await store.close()
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
        finally:
            await conn.close()
    return rows


def _report(rows: list[dict[str, float]]) -> None:
    base = rows[0]
    table = []
    for r in rows:
        users = int(r["users"])
        target = TARGET_S.get(users)
        verdict = "" if target is None else ("PASS" if r["wall_s"] <= target else "FAIL")
        table.append([f"{users:,}", f"{r['fill_s']:.1f}", f"{r['wall_s']:.1f}",
                      f"{r['per_s']:,.0f}", f"{r['peak_mb']:.1f}", f"{r['retained_mb']:.1f}",
                      f"{r['wall_s'] / base['wall_s']:.2f}",
                      f"{r['peak_mb'] / max(base['peak_mb'], 0.1):.2f}", verdict])
    print(format_table(
        ["audience", "fill s", "fan-out s", "users/s", "peak MB", "retained MB",
         f"time x{int(base['users']):,}", f"peak x{int(base['users']):,}", "<= 600 s"], table))
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_scheduled", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES}")
    parser.add_argument("--users", type=int, nargs="+", help="audience sizes to run")
    parser.add_argument("--page", type=int, default=1000, help="users per page (default 1000)")
    args = parser.parse_args(argv)
    sizes = tuple(args.users) if args.users else (QUICK_SIZES if args.quick else SIZES)
    print(f"one 10:00 slot on PostgreSQL, pages of {args.page}; load average before: "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = asyncio.run(run(sizes, args.page))
    _report(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
