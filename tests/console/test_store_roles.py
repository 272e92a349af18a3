"""The store reads the console adds, on both stores: a venue's recent events, the
tenant's recorded pings for a back-test, and a campaign's deliveries over time; each
ordered, bounded and kept to its tenant."""

from __future__ import annotations

import numpy as np
import pytest

from server.store import Store
from tests.server.conftest import OTHER_TENANT
from tests.server.store.builders import FORUM, T0, delivery, event_row, pings

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_venue_events_are_the_last_ones_since_a_time_oldest_first(
    store: Store, tenant: str,
) -> None:
    async with store.batch(tenant, ["u1", "u2"]) as tx:
        await tx.insert_events([event_row("u1", "a", T0), event_row("u2", "b", T0 + 60),
                                event_row("u1", "c", T0 + 120), event_row("u2", "d", T0 - 99)])
    found = await store.venue_events(tenant, FORUM, since=T0, limit=2)
    assert [(r.event.user_id, r.event.at) for r in found] == [("u2", T0 + 60), ("u1", T0 + 120)]
    assert len(await store.venue_events(tenant, FORUM, since=T0 - 100, limit=10)) == 4
    assert await store.venue_events(tenant, "elsewhere", since=0, limit=10) == []
    assert await store.venue_events(OTHER_TENANT, FORUM, since=0, limit=10) == []


async def test_recorded_pings_come_back_in_time_order_with_when_they_arrived(
    store: Store, tenant: str,
) -> None:
    async with store.batch(tenant, ["u1"]) as tx:
        await tx.insert_pings(pings("u1", n=3, t0=T0), received_at=T0 + 100)
    async with store.batch(tenant, ["u2"]) as tx:
        await tx.insert_pings(pings("u2", n=3, t0=T0 + 5), received_at=T0 + 200)
    batch, received = await store.recorded_pings(tenant, since=T0 + 1, limit=4)
    assert batch.ts.tolist() == [T0 + 10, T0 + 15, T0 + 20, T0 + 25]
    assert [str(u) for u in batch.user_id.tolist()] == ["u1", "u2", "u1", "u2"]
    assert received.tolist() == [T0 + 100, T0 + 200, T0 + 100, T0 + 200]
    assert np.allclose(batch.accuracy_m, 10.0) and np.allclose(batch.lat, 60.1692)
    empty, _ = await store.recorded_pings(OTHER_TENANT, since=0, limit=10)
    assert len(empty) == 0


async def test_delivery_timeline_counts_per_bucket_channel_and_status(
    store: Store, tenant: str,
) -> None:
    hour = T0 - T0 % 3600
    async with store.batch(tenant, ["u1", "u2", "u3"]) as tx:
        await tx.insert_deliveries([delivery("u1", "k1", hour + 10),
                                    delivery("u2", "k2", hour + 3000),
                                    delivery("u3", "k3", hour + 7300)])
    rows = await store.delivery_timeline(tenant, "c1", bucket_s=3600)
    assert rows == [(hour, "inbox", "pending", 2), (hour + 7200, "inbox", "pending", 1)]
    assert await store.delivery_timeline(tenant, "other", bucket_s=3600) == []
    assert await store.delivery_timeline(OTHER_TENANT, "c1", bucket_s=3600) == []
