"""Group commit over both stores: concurrent requests share a transaction, and each gets
exactly the answer it would get alone (walks into Forum, © OpenStreetMap contributors)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest

from server.group_commit import GroupCommitter
from server.pipeline import IngestResult, ingest
from server.store import MemoryStore, Store
from server.store.roles import BatchTx
from server.tenant_core import TenantCores
from tests.server.pipeline.builders import (
    FORUM,
    T0,
    Fix,
    IngestForwarder,
    batch,
    setup_tenant,
    walk_into_forum,
)
from triggers.pings import PingBatch

pytestmark = pytest.mark.asyncio(loop_scope="session")

TENANT = "acme"
USERS = [f"u{i}" for i in range(8)]


class _Counting(IngestForwarder):
    """An ingest store that counts its batch transactions (and can fail one user's)."""

    def __init__(self, inner: Store, poison: str | None = None) -> None:
        super().__init__(inner)
        self.batches: list[tuple[str, ...]] = []
        self.poison = poison

    @asynccontextmanager
    async def batch(self, tenant_id: str, user_ids: Sequence[str], *,
                    skip_locked: bool = False) -> AsyncIterator[BatchTx]:
        self.batches.append(tuple(sorted(user_ids)))
        if self.poison is not None and self.poison in user_ids:
            raise RuntimeError(f"disk full for {self.poison}")
        async with self.inner.batch(tenant_id, user_ids, skip_locked=skip_locked) as tx:
            await asyncio.sleep(0.01)  # a transaction takes time: others queue meanwhile
            yield tx


def _walks(users: Sequence[str]) -> dict[str, list[Fix]]:
    return {u: walk_into_forum(u, T0 + 3 * i) for i, u in enumerate(users)}


def _summary(result: IngestResult) -> tuple[Any, ...]:
    return (sorted((e.user_id, e.kind.value, e.venue_id, e.at) for e in result.events),
            result.counters.as_dict(), sorted(result.users))


async def _alone(store: Store, requests: list[PingBatch], now: float) -> list[tuple[Any, ...]]:
    await setup_tenant(store, TENANT, users=USERS)
    cores = TenantCores()
    return [_summary(await ingest(store, cores, TENANT, r, now=now)) for r in requests]


async def test_concurrent_requests_share_transactions_and_get_their_own_answers(
    store: Store,
) -> None:
    walks = _walks(USERS)
    # Each request: one user's walk; one of them sends a ping twice (a duplicate).
    requests = [batch(walks[u] + (walks[u][:1] if u == "u3" else [])) for u in USERS]
    now = max(f.ts for w in walks.values() for f in w)
    await setup_tenant(store, TENANT, users=USERS)
    counting = _Counting(store)
    groups = GroupCommitter(counting, TenantCores())
    results = await asyncio.gather(*(groups.ingest(TENANT, r, now=now) for r in requests))

    assert len(counting.batches) < len(requests)  # grouped: fewer transactions
    for user_id, result in zip(USERS, results, strict=True):
        assert [(e.user_id, e.kind.value, e.venue_id) for e in result.events] == [
            (user_id, "enter", FORUM)]
        assert result.users == (user_id,)
        assert result.counters.received == len(walks[user_id]) + (user_id == "u3")
        assert result.counters.duplicate == (1 if user_id == "u3" else 0)
    # Everything committed: one ENTER per user in the store.
    for user_id in USERS:
        assert [e.event.kind.value for e in await store.list_events(TENANT, user_id)] == [
            "enter"]


async def test_grouped_answers_equal_the_answers_of_each_request_alone(store: Store) -> None:
    walks = _walks(USERS[:4])
    requests = [batch(w) for w in walks.values()]
    now = max(f.ts for w in walks.values() for f in w)
    reference = MemoryStore()
    expected = await _alone(reference, requests, now)
    await reference.close()
    await setup_tenant(store, TENANT, users=USERS)
    groups = GroupCommitter(_Counting(store), TenantCores())
    got = await asyncio.gather(*(groups.ingest(TENANT, r, now=now) for r in requests))
    assert [_summary(r) for r in got] == expected


async def test_one_users_requests_are_processed_in_arrival_order(store: Store) -> None:
    fixes = walk_into_forum("u1")
    half = len(fixes) // 2
    await setup_tenant(store, TENANT)
    counting = _Counting(store)
    groups = GroupCommitter(counting, TenantCores())
    first, second = await asyncio.gather(
        groups.ingest(TENANT, batch(fixes[:half]), now=fixes[-1].ts),
        groups.ingest(TENANT, batch(fixes[half:]), now=fixes[-1].ts))
    # Never in one group (each request's users are its own), and never reordered: the
    # second request's pings are not late.
    assert all(b == ("u1",) for b in counting.batches) and len(counting.batches) == 2
    assert second.counters.late == 0 and first.counters.late == 0
    assert [e.kind.value for e in first.events + second.events] == ["enter"]


async def test_a_failing_request_fails_alone(store: Store) -> None:
    walks = _walks(USERS[:4])
    now = max(f.ts for w in walks.values() for f in w)
    await setup_tenant(store, TENANT, users=USERS)
    counting = _Counting(store, poison="u2")
    groups = GroupCommitter(counting, TenantCores())
    results = await asyncio.gather(
        *(groups.ingest(TENANT, batch(w), now=now) for w in walks.values()),
        return_exceptions=True)
    for user_id, result in zip(walks, results, strict=True):
        if user_id == "u2":
            assert isinstance(result, RuntimeError) and "disk full" in str(result)
        else:
            assert isinstance(result, IngestResult)
            assert [e.kind.value for e in result.events] == ["enter"]
    assert await store.list_events(TENANT, "u2") == []


async def test_a_group_holds_at_most_max_pings(store: Store) -> None:
    walks = _walks(USERS)
    now = max(f.ts for w in walks.values() for f in w)
    per = len(next(iter(walks.values())))
    await setup_tenant(store, TENANT, users=USERS)
    counting = _Counting(store)
    groups = GroupCommitter(counting, TenantCores(), max_pings=2 * per + 1)
    await asyncio.gather(*(groups.ingest(TENANT, batch(w), now=now) for w in walks.values()))
    assert max(len(b) for b in counting.batches) <= 2
    assert sorted(u for b in counting.batches for u in b) == sorted(USERS)
