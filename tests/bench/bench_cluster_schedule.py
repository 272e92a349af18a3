"""Scheduled fan-out by partition: what a slot costs when W workers each walk the zone
group for their own partitions (:mod:`server.cluster.schedule`), next to a node's one
walk (:func:`server.scheduler.schedule_round`).

The audience of ``bench_scheduled.py`` (N profiles tagged ``mother_baby`` in
Asia/Shanghai, written by ``generate_series``, not timed) once per variant, each in
its own tenant of one throwaway schema: the node; then 1, 2 and 4 workers over 16
partitions, each worker's walk run one after another in this process with its share
of the partitions (so their CPU adds up; NATS is not involved: ownership is given by
hand). Variants are interleaved in one run, in the same load window. Timed: the whole
slot. Printed: seconds, this process's CPU seconds (``time.process_time``: decide,
JSON, the PostgreSQL client; not the server), profile rows read (W × N), and each
variant's time and CPU over the node's. Checked after: N decisions, N ledger entries
and N pending deliveries per variant.

Usage: ``python -m tests.bench.bench_cluster_schedule [--users N] [--page N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid

import asyncpg

from server.cluster.schedule import schedule_owned
from server.scheduler import schedule_round
from server.store import PostgresStore
from server.store.migrate import quote_ident
from server.tenant_core import TenantCores
from tests.bench._common import format_table
from tests.bench.bench_scheduled import DEFAULT_PG, SLOT_AT, count_rows, fill_audience

PARTITIONS = 16
WORKERS = (1, 2, 4)


def _owning(worker: int, workers: int) -> set[int]:
    return {p for p in range(PARTITIONS) if p % workers == worker}


async def _variant(store: PostgresStore, users: int, page: int,
                   workers: int | None) -> dict[str, float]:
    """``workers`` None: the node's walk."""
    tenant = f"bench-{'node' if workers is None else f'w{workers}'}"
    await fill_audience(store, tenant, users)
    cores = TenantCores()
    await cores.get(store, tenant)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    if workers is None:
        await schedule_round(store, cores, tenant, SLOT_AT, page_users=page,
                             max_pages=1 << 40)
    else:
        for worker in range(workers):
            mine = _owning(worker, workers)
            locks = {p: asyncio.Lock() for p in mine}
            await schedule_owned(store, cores, tenant, SLOT_AT, owned=locks.get,
                                 partitions=PARTITIONS, page_users=page)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    decisions, ledger, pending = await count_rows(store, tenant)
    assert decisions == ledger == pending == users, (decisions, ledger, pending)
    return {"workers": 0 if workers is None else workers, "wall_s": wall, "cpu_s": cpu,
            "rows_read": users * (workers or 1)}


async def run(users: int, page: int) -> list[dict[str, float]]:
    dsn = os.environ.get("TEST_DATABASE_URL", DEFAULT_PG)
    schema = f"geopush_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    store = await PostgresStore.open(dsn, schema=schema, min_size=2, max_size=4)
    try:
        rows = []
        for workers in (None, *WORKERS):
            rows.append(await _variant(store, users, page, workers))
            print(f"  {'node' if workers is None else f'{workers} workers'}: "
                  f"{rows[-1]['wall_s']:.1f} s", flush=True)
        return rows
    finally:
        await store.close()
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
        finally:
            await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_cluster_schedule",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=20_000, help="audience (default 20,000)")
    parser.add_argument("--page", type=int, default=500, help="users per page (default 500)")
    args = parser.parse_args(argv)
    print(f"one 10:00 slot, {args.users:,} users, pages of {args.page}, {PARTITIONS} "
          f"partitions; load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = asyncio.run(run(args.users, args.page))
    node = rows[0]
    print(format_table(
        ["walk", "seconds", "CPU s", "profile rows read", "time / node", "CPU / node"],
        [["node" if r["workers"] == 0 else f"{int(r['workers'])} workers",
          f"{r['wall_s']:.1f}", f"{r['cpu_s']:.1f}", f"{int(r['rows_read']):,}",
          f"{r['wall_s'] / node['wall_s']:.2f}", f"{r['cpu_s'] / node['cpu_s']:.2f}"]
         for r in rows]))
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
