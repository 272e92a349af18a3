"""The background timer loop of ``create_app``: DWELL fires at its threshold without
another ping, and one failing tenant does not stop the loop."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app, prune_old_pings
from server.auth import Role
from server.store import MemoryStore
from tests.server.api.conftest import FakeClock, add_key, make_settings, ping, venue_feature
from tests.server.conftest import TENANT
from tests.server.store.builders import pings as batch_of
from tests.server.waiting import eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")


class _BrokenTenantStore(MemoryStore):
    """A store whose ``due_users`` fails for one tenant (a poisoned row)."""

    async def due_users(self, tenant_id: str, now: float, limit: int) -> list[str]:
        if tenant_id == "broken":
            raise RuntimeError("poisoned presence row")
        return await super().due_users(tenant_id, now, limit)


async def test_dwell_fires_by_timer_and_a_bad_tenant_is_skipped(clock: FakeClock) -> None:
    store = _BrokenTenantStore()
    await store.ensure_tenant("broken")
    app = create_app(make_settings(timer_interval_s=0.02), store=store, clock=clock)
    async with TestClient(TestServer(app)) as client:
        admin = {"Authorization": f"Bearer {await add_key(store, TENANT, Role.ADMIN)}"}
        resp = await client.put("/v1/venues/senate", json=venue_feature(dwell_s=300),
                                headers=admin)
        assert resp.status == 201
        resp = await client.post("/v1/pings", headers=admin, json={
            "pings": [ping(ts=clock.now - 20), ping(ts=clock.now - 10)]})
        assert [e["kind"] for e in (await resp.json())["events"]] == ["enter"]
        clock.advance(400)  # past the 300 s threshold; no ping follows

        async def dwelled() -> bool:
            events = await store.list_events(TENANT, "u1")
            return any(r.event.kind.value == "dwell" for r in events)

        await eventually(dwelled)
        kinds = [r.event.kind.value for r in await store.list_events(TENANT, "u1")]
        assert "dwell" in kinds
        metrics = await (await client.get("/metrics")).text()
        assert 'geopush_events_total{kind="dwell"} 1.0' in metrics
        assert "geopush_timer_errors_total" in metrics
        assert "geopush_timer_errors_total 0.0" not in metrics


async def test_housekeeping_prunes_pings_past_the_retention_period(clock: FakeClock) -> None:
    """Raw pings older than ping_retention_days go; a recent batch stays."""
    store = MemoryStore()
    app = create_app(make_settings(housekeeping_interval_s=0.02, ping_retention_days=1.0),
                     store=store, clock=clock)
    async with TestClient(TestServer(app)) as client:
        sdk = {"Authorization": f"Bearer {await add_key(store, TENANT, Role.SDK)}"}
        resp = await client.post("/v1/pings", headers=sdk, json={
            "pings": [ping(ts=clock.now - 20), ping(ts=clock.now - 10)]})
        assert resp.status == 200
        clock.advance(2 * 86_400)  # two days later the first batch is past retention
        resp = await client.post("/v1/pings", headers=sdk, json={
            "pings": [ping(ts=clock.now - 5)]})
        assert resp.status == 200

        async def pruned() -> bool:
            return b"geopush_pings_pruned_total 2.0" in await (await client.get("/metrics")).read()

        await eventually(pruned)
        assert (await store.erase_user(TENANT, "u1"))["pings"] == 1


async def test_prune_old_pings_visits_every_tenant() -> None:
    store = MemoryStore()
    for tenant in ("a", "b"):
        await store.ensure_tenant(tenant)
        async with store.batch(tenant, ["u1"]) as tx:
            await tx.insert_pings(batch_of("u1", 3), received_at=100.0)
    assert await prune_old_pings(store, before=200.0) == 6
    assert await prune_old_pings(store, before=200.0) == 0
