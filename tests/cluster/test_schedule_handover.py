"""Scheduled fan-out by partition on PostgreSQL, ownership played by hand: two workers
split the partitions of a 10:00 slot, one loses a partition mid-walk, and its new owner
resumes the partition's cursor — every mother gets exactly one decision and one push,
also when the cursor is behind what was written (the page in flight when a worker
died)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from server.cluster.schedule import OwnedLock, schedule_owned
from server.store import PostgresStore
from server.tenant_core import TenantCores
from tests.decisions.builders import at, profile
from tests.server.api.conftest import make_settings
from tests.server.scheduled.builders import CAMPAIGN, HELSINKI_MOTHERS, TENANT, setup_case

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.needs_postgres]

PARTITIONS = 8
SLOT_TIME = at("2026-12-07 10:00")
NOW = SLOT_TIME + 30
MOTHERS = [f"hel-m{i:03d}" for i in range(150)]
LOST = 2
"""The partition the first worker loses after a few of its pages."""


def owning(partitions: set[int], *, lose_after: int | None = None) -> OwnedLock:
    """Ownership of ``partitions``; with ``lose_after``, partition :data:`LOST` is gone
    once it has been asked for that many times."""
    locks = {p: asyncio.Lock() for p in partitions}
    asked = [0]

    def owned(partition: int) -> asyncio.Lock | None:
        if partition == LOST and lose_after is not None:
            asked[0] += 1
            if asked[0] > lose_after:
                return None
        return locks.get(partition)

    return owned


def cores() -> TenantCores:
    return TenantCores(rebuild_wait_s=0, render_limits=make_settings().render_limits(),
                       render_clock=time.monotonic)


async def walk(store: PostgresStore, owned: Callable[[int], asyncio.Lock | None]) -> int:
    done = await schedule_owned(store, cores(), TENANT, NOW, owned=owned,
                                partitions=PARTITIONS, page_users=10)
    return done.decisions


async def per_user(store: PostgresStore, table: str) -> dict[str, int]:
    async with store._pool.acquire() as conn:
        rows = await conn.fetch(f"SELECT user_id, count(*) AS n FROM {table}"
                                " WHERE tenant_id = $1 GROUP BY 1", TENANT)
    return {r["user_id"]: r["n"] for r in rows}


async def setup(store: PostgresStore) -> list[str]:
    """The case's tenant and 150 more Helsinki mothers; the users due at 10:00 Helsinki."""
    await setup_case(store, times=["10:00"])
    for user_id in MOTHERS:
        await store.put_profile(TENANT, profile(user_id, tags=["mother_baby"]))
    return sorted(HELSINKI_MOTHERS + MOTHERS)


def only(users: list[str], counts: dict[str, int]) -> dict[str, int]:
    return {u: n for u, n in counts.items() if u in users}


async def test_a_partition_lost_mid_slot_is_finished_by_its_new_owner(
    pg_store: PostgresStore,
) -> None:
    helsinki = await setup(pg_store)
    first = await walk(pg_store, owning({0, 1, 2, 3}, lose_after=3))
    second = await walk(pg_store, owning({4, 5, 6, 7}))
    assert first > 0 and second > 0
    pushed = await per_user(pg_store, "deliveries")
    assert set(helsinki) - set(pushed)  # the lost partition's users are still waiting
    await walk(pg_store, owning({LOST}))
    pushed = await per_user(pg_store, "deliveries")
    assert only(helsinki, pushed) == dict.fromkeys(helsinki, 1)
    assert only(helsinki, await per_user(pg_store, "decisions")) == only(helsinki, pushed)
    assert await walk(pg_store, owning(set(range(PARTITIONS)))) == 0  # every cursor done


async def test_a_cursor_behind_the_written_pages_sends_nobody_twice(
    pg_store: PostgresStore,
) -> None:
    await setup(pg_store)
    await walk(pg_store, owning(set(range(PARTITIONS))))
    before = await per_user(pg_store, "deliveries")
    async with pg_store._pool.acquire() as conn:  # as if the worker died before saving
        await conn.execute("UPDATE schedule_slots SET after_user = NULL, done = false"
                           " WHERE tenant_id = $1 AND cursor_id LIKE $2",
                           TENANT, f"{CAMPAIGN}@%#p{LOST}/{PARTITIONS}")
    redone = await walk(pg_store, owning({LOST}))
    assert redone > 0  # the partition's users were decided again...
    assert await per_user(pg_store, "deliveries") == before  # ...and nothing was added
    assert set(before.values()) == {1}
