"""The venues-per-tenant limit is checked by the store in the write itself, on both
stores: past it nothing is written and the catalogue version does not move."""

from __future__ import annotations

import asyncio

import pytest

from server.store import LimitExceededError, Store
from tests.server.conftest import OTHER_TENANT
from tests.server.store.builders import circle

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_write_past_the_venue_limit_writes_nothing(store: Store, tenant: str) -> None:
    await store.put_venues(tenant, [circle("a"), circle("b")], max_venues=3)
    version = await store.catalog_version(tenant)
    with pytest.raises(LimitExceededError) as raised:
        await store.put_venues(tenant, [circle("a"), circle("c"), circle("d")], max_venues=3)
    assert (raised.value.limit, raised.value.would_be) == (3, 4)
    assert await store.catalog_version(tenant) == version
    assert [v.id for v in await store.list_venues(tenant)] == ["a", "b"]
    # Replacing venues and adding up to the limit is fine; other tenants count alone.
    assert await store.put_venues(tenant, [circle("a"), circle("c")], max_venues=3) == 1
    assert await store.put_venue(OTHER_TENANT, circle("z"), max_venues=1)


async def test_concurrent_writes_cannot_both_pass_the_limit(store: Store, tenant: str) -> None:
    results = await asyncio.gather(
        *(store.put_venue(tenant, circle(f"v{i}"), max_venues=3) for i in range(6)),
        return_exceptions=True)
    assert sum(r is True for r in results) == 3
    assert all(isinstance(r, LimitExceededError) for r in results if r is not True)
    assert len(await store.list_venues(tenant)) == 3
