"""Rate limits across nodes: two apps (two ``create_app``, each its own test server and
store pool) on one PostgreSQL schema, as two ``geopush serve`` behind a load balancer.

A key's bucket is shared: its burst is spent once across the nodes, not once per node;
nodes lease tokens a few at a time; a node that cannot reach the buckets falls back to a
bucket of its own.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from server.api.context import LIMITER, METRICS
from server.auth import Principal, RateLimiter, Role
from server.rate_limits import SharedRateLimiter, lease_size
from server.settings import RateLimit
from server.store import PostgresStore
from tests.server.api.conftest import Api, serving
from tests.server.conftest import TENANT, drop_schema, execute

pytestmark = [pytest.mark.needs_postgres, pytest.mark.asyncio(loop_scope="session")]


async def post_pings(api: Api, key: str) -> tuple[int, str | None]:
    """An empty ping batch with ``key``: the status and Retry-After."""
    resp = await api.client.post("/v1/pings", json={"pings": []},
                                  headers={"Authorization": f"Bearer {key}"})
    return resp.status, resp.headers.get("Retry-After")


def leases(api: Api, outcome: str) -> float:
    counter = api.client.app[METRICS].rate_limit_leases.labels(outcome=outcome)
    return float(counter._value.get())


async def test_a_keys_burst_is_spent_once_across_two_nodes(
    pg_store: PostgresStore, second_store: PostgresStore
) -> None:
    limits: dict[str, Any] = {"rate_sdk_per_s": 0.01, "rate_sdk_burst": 4}
    async with serving(pg_store, **limits) as a, serving(second_store, **limits) as b:
        key = a.keys[(TENANT, Role.SDK)]  # both nodes read one key table
        answers = [await post_pings(node, key) for node in (a, b, a, b, a, b)]
    # Per node, each would have allowed 4 (8 in all): shared, 4 in all.
    assert answers == [(200, None)] * 4 + [(429, "100")] * 2
    assert leases(a, "denied") == leases(b, "denied") == 1


async def test_a_node_leases_a_few_tokens_and_spends_them_without_asking_again(
    pg_store: PostgresStore,
) -> None:
    limits: dict[str, Any] = {"rate_sdk_per_s": 50.0, "rate_sdk_burst": 200}
    assert lease_size(RateLimit(per_s=50.0, burst=200)) == 5
    async with serving(pg_store, **limits) as a:
        key = a.keys[(TENANT, Role.SDK)]
        answers = [await post_pings(a, key) for _ in range(5)]
        assert answers == [(200, None)] * 5
        assert leases(a, "leased") == 1  # one round trip for five requests
        await post_pings(a, key)
        assert leases(a, "leased") == 2


async def test_unspent_leases_are_dropped_after_a_second(pg_store: PostgresStore) -> None:
    now = [0.0]
    limiter = SharedRateLimiter(pg_store, lambda _role: RateLimit(per_s=40.0, burst=400),
                                fallback=make_limiter_fallback(), monotonic=lambda: now[0])
    principal = principal_of("k-lease")
    await limiter.acquire(principal)  # leases 4 (a tenth of a second), spends 1
    assert await bucket_tokens(pg_store, "k-lease") == 396
    await limiter.acquire(principal)  # from the lease: the bucket is not asked
    assert await bucket_tokens(pg_store, "k-lease") == 396
    now[0] = 1.0  # the lease's two other tokens are dropped, not spent later
    await limiter.acquire(principal)
    # A new lease of 4 (the bucket refilled by 40/s for the few ms between the calls).
    assert await bucket_tokens(pg_store, "k-lease") == pytest.approx(392, abs=2)


@pytest.fixture
async def store_without_buckets(database_url: str) -> AsyncIterator[PostgresStore]:
    """A throwaway schema whose ``rate_buckets`` table is gone: every lease fails there."""
    schema = f"geopush_nobuckets_{uuid.uuid4().hex[:10]}"
    store = await PostgresStore.open(database_url, schema=schema, min_size=1, max_size=4)
    try:
        await execute(database_url, schema, "DROP TABLE rate_buckets")
        yield store
    finally:
        await store.close()
        await drop_schema(database_url, schema)


async def test_without_the_shared_buckets_a_node_limits_with_its_own(
    store_without_buckets: PostgresStore,
) -> None:
    async with serving(store_without_buckets, rate_sdk_per_s=0.01, rate_sdk_burst=2) as a:
        key = a.keys[(TENANT, Role.SDK)]
        answers = [await post_pings(a, key) for _ in range(3)]
        assert answers == [(200, None), (200, None), (429, "100")]
        # One failed call: for the next 5 s the node does not ask the database again.
        assert leases(a, "failed") == 1


async def test_after_a_failure_the_shared_buckets_are_asked_again_5_s_later(
    pg_store: PostgresStore,
) -> None:
    now = [0.0]
    calls: list[str] = []

    class FailingOnce:
        async def take_rate_tokens(self, key_id: str, *, per_s: float, burst: float,
                                   want: int) -> tuple[int, float]:
            calls.append(key_id)
            if len(calls) == 1:
                raise ConnectionError("database unreachable")
            return await pg_store.take_rate_tokens(key_id, per_s=per_s, burst=burst, want=want)

        async def prune_rate_buckets(self, *, idle_for_s: float) -> int:
            return 0

    limiter = SharedRateLimiter(FailingOnce(), lambda _role: RateLimit(per_s=0.01, burst=5),
                                fallback=RateLimiter(lambda _role: RateLimit(per_s=0.01,
                                                                            burst=5)),
                                monotonic=lambda: now[0])
    principal = principal_of("k-down")
    await limiter.acquire(principal)  # fails: the node's own bucket decides
    now[0] = 4.9
    await limiter.acquire(principal)  # still within 5 s: not asked
    assert calls == ["k-down"]
    now[0] = 5.0
    await limiter.acquire(principal)  # asked again, and it answers
    assert calls == ["k-down", "k-down"]
    assert await bucket_tokens(pg_store, "k-down") == pytest.approx(4, abs=0.01)


async def test_shared_limits_can_be_turned_off_and_each_node_counts_alone(
    pg_store: PostgresStore, second_store: PostgresStore
) -> None:
    limits: dict[str, Any] = {"rate_sdk_per_s": 0.01, "rate_sdk_burst": 2,
                              "rate_limit_shared": False}
    async with serving(pg_store, **limits) as a, serving(second_store, **limits) as b:
        assert not isinstance(a.client.app[LIMITER], SharedRateLimiter)
        key = a.keys[(TENANT, Role.SDK)]
        answers = [await post_pings(node, key) for node in (a, b, a, b, a)]
    assert [status for status, _ in answers] == [200, 200, 200, 200, 429]


async def test_concurrent_requests_on_one_node_share_one_lease(pg_store: PostgresStore) -> None:
    calls = []

    class Counting:
        async def take_rate_tokens(self, key_id: str, *, per_s: float, burst: float,
                                   want: int) -> tuple[int, float]:
            calls.append(want)
            return await pg_store.take_rate_tokens(key_id, per_s=per_s, burst=burst, want=want)

        async def prune_rate_buckets(self, *, idle_for_s: float) -> int:
            return await pg_store.prune_rate_buckets(idle_for_s=idle_for_s)

    limiter = SharedRateLimiter(Counting(), lambda _role: RateLimit(per_s=50.0, burst=200),
                                fallback=make_limiter_fallback())
    await asyncio.gather(*(limiter.acquire(principal_of("k-burst")) for _ in range(5)))
    assert calls == [5]


# --------------------------------------------------------------------------- helpers


def make_limiter_fallback() -> RateLimiter:
    return RateLimiter(lambda _role: RateLimit(per_s=0.01, burst=1))


def principal_of(key_id: str) -> Principal:
    return Principal(key_id=key_id, tenant_id=TENANT, role=Role.SDK)


async def bucket_tokens(store: PostgresStore, key_id: str) -> float:
    async with store._pool.acquire() as conn:
        value = await conn.fetchval("SELECT tokens FROM rate_buckets WHERE key_id = $1", key_id)
    return float(value)
