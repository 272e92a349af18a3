"""One of two OS processes fanning out the same scheduled slot on one PostgreSQL schema.

Run by ``test_two_processes.py`` as ``python -m tests.server.scheduled.two_process_worker
URL SCHEMA TENANT NOW``: prints ``ready``, waits for ``go`` on stdin (so both start
together), runs scheduler rounds of small pages until nothing is pending, prints ``done``.
"""

from __future__ import annotations

import asyncio
import sys

from server.scheduler import schedule_round
from server.store import PostgresStore
from server.tenant_core import TenantCores


async def main(url: str, schema: str, tenant: str, now: str) -> None:
    store = await PostgresStore.open(url, schema=schema, min_size=2, max_size=4,
                                     apply_migrations=False)
    cores = TenantCores()
    await cores.get(store, tenant)
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    while (await schedule_round(store, cores, tenant, float(now), page_users=3,
                                max_pages=2)).pending:
        pass
    await store.close()
    print("done", flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
