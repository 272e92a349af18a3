"""Through the running service: a scheduled campaign created over HTTP reaches a user at
her local 10:00 by the timer loop alone (no ping), and her decisions say why."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from server.auth import Role
from server.store import MemoryStore
from tests.decisions.builders import at
from tests.server.api.conftest import FakeClock, add_key, make_settings
from tests.server.conftest import TENANT
from tests.server.waiting import eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_the_timer_loop_sends_a_scheduled_campaign_at_local_ten() -> None:
    store = MemoryStore()
    clock = FakeClock(at("2026-12-07 09:59"))
    app = create_app(make_settings(timer_interval_s=0.02), store=store, clock=clock)
    async with TestClient(TestServer(app)) as client:
        admin = {"Authorization": f"Bearer {await add_key(store, TENANT, Role.ADMIN)}"}
        resp = await client.put("/v1/users/aino", headers=admin, json={
            "attributes": {"timezone": "Europe/Helsinki", "first_name": "Aino"},
            "tags": ["mother_baby"]})
        assert resp.status in (200, 201), await resp.text()
        resp = await client.post("/v1/campaigns", headers=admin, json={
            "id": "mother-baby-daily",
            "trigger": {"scheduled": {"times": ["10:00", "15:00"]}},
            "audience": {"any_of_tags": ["mother_baby"]},
            "variants": [{"id": "warm", "title": "Huomenta {{ user.first_name }}",
                          "body": "Pieni hetki sinulle ja vauvalle"}]})
        assert resp.status == 201, await resp.text()
        resp = await client.post("/v1/campaigns/mother-baby-daily/activate", headers=admin)
        assert resp.status == 200, await resp.text()
        clock.now = at("2026-12-07 10:00")

        async def sent() -> bool:
            return bool(await store.list_deliveries(TENANT, user_id="aino"))

        await eventually(sent)
        [delivery] = await store.list_deliveries(TENANT, user_id="aino")
        assert (delivery.title, delivery.event) == ("Huomenta Aino", "scheduled")
        resp = await client.get("/v1/users/aino/decisions", headers=admin)
        [decision] = (await resp.json())["decisions"]
        assert (decision["event"], decision["venue_id"]) == ("scheduled", None)
