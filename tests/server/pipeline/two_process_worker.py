"""One of two OS processes ingesting overlapping batches against one PostgreSQL schema.

Run by ``test_two_processes.py`` as ``python -m tests.server.pipeline.two_process_worker
URL SCHEMA TENANT PART``. It prints ``ready`` and waits for ``go`` on stdin (so both
processes start together), ingests its part of every user's timeline, prints
``ingested``, waits for ``go`` again, fires timers, prints ``done``.
"""

from __future__ import annotations

import asyncio
import random
import sys

from server.pipeline import fire_timers, ingest
from server.store import PostgresStore
from server.tenant_core import TenantCores
from tests.server.pipeline.builders import T0, Fix, batch, timeline

USERS = [f"user-{i:02d}" for i in range(24)]
TIMERS_AT = T0 + 1520.0
"""After every visit's silence timeout (last inside ping + 900 s), so both workers
compete for the same due timers."""


def part(which: str, user_id: str) -> tuple[list[Fix], float]:
    """Worker A: the timeline up to +300 s; worker B: from +150 s (150 s overlap)."""
    fixes = timeline(user_id)
    if which == "A":
        mine = [f for f in fixes if f.ts <= T0 + 300]
    else:
        mine = [f for f in fixes if f.ts >= T0 + 150]
    return mine, max(f.ts for f in mine)


async def main(url: str, schema: str, tenant: str, which: str) -> None:
    store = await PostgresStore.open(url, schema=schema, min_size=2, max_size=4)
    cores = TenantCores()
    await cores.get(store, tenant)
    rng = random.Random(which)
    groups = [USERS[i:i + 3] for i in range(0, len(USERS), 3)]
    rng.shuffle(groups)
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    for users in groups:
        fixes: list[Fix] = []
        now = 0.0
        for user_id in users:
            mine, last = part(which, user_id)
            fixes += mine
            now = max(now, last)
        await ingest(store, cores, tenant, batch(fixes), now=now)
    print("ingested", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    while (await fire_timers(store, cores, tenant, TIMERS_AT, limit=5)).users:
        pass
    await store.close()
    print("done", flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
