"""Behaviour triggers in the service, on both stores: "viewed a baby item, no purchase of
it within an hour → its offer", fired after its delay through decide (event behaviour,
no venue, the item in the template), cancelled by the purchase, held over quiet hours,
never doubled (re-posted events, repeated rounds, two servers on one database); and a
location campaign's ``also`` condition ("in the mall and viewed a baby item this week")."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server.api.context import CORES
from server.auth import Role
from server.behaviour_service import fire_all_behaviour_triggers
from server.store import PostgresStore
from tests.server.api.conftest import (
    NOON_UTC,
    Api,
    campaign_body,
    ping,
    serving,
    venue_feature,
)
from tests.server.conftest import TENANT

pytestmark = pytest.mark.asyncio(loop_scope="session")

HOUR = 3600.0


def offer_campaign(**trigger: Any) -> dict[str, Any]:
    behaviour = {"kind": "view", "item": {"category": "baby"}, "delay_s": HOUR,
                 "unless": {"kind": "purchase", "same_item": True, "within_s": HOUR},
                 **trigger}
    body = campaign_body("still_thinking", status="active", trigger={"behaviour": behaviour},
                         variants=[{"id": "a", "title": "Still thinking about {{ item.name }}?",
                                    "body": "{{ item.name }}: 10% off today only"}])
    del body["venues"]
    return body


def event(kind: str, *, item: str = "stroller-9", at: float = NOON_UTC,
          category: str = "baby", user: str = "mum-1", **extra: Any) -> dict[str, Any]:
    return {"user_id": user, "ts": at, "kind": kind, **extra,
            "item": {"id": item, "name": "City stroller" if item == "stroller-9" else item,
                     "category": category}}


async def setup(api: Api, **trigger: Any) -> None:
    await api.call("POST", "/v1/campaigns", json_body=offer_campaign(**trigger), expect=201)


async def post(api: Api, *events: dict[str, Any]) -> None:
    """Post ``events`` when the last of them happened (the server clock at its time)."""
    api.clock.now = max(api.clock.now, *(e["ts"] for e in events))
    _, body = await api.call("POST", "/v1/events", role=Role.SDK,
                             json_body={"events": list(events)}, expect=200)
    assert body["rejected"] == []


async def fire(api: Api, at: float) -> Any:
    cores = api.client.app[CORES]
    return await fire_all_behaviour_triggers(api.store, cores, TENANT, at)


async def decisions(api: Api, user: str = "mum-1") -> list[dict[str, Any]]:
    _, body = await api.call("GET", f"/v1/users/{user}/decisions", role=Role.MANAGER,
                             expect=200)
    return list(body["decisions"])


async def test_a_view_without_purchase_fires_the_items_offer_after_the_delay(api: Api) -> None:
    await setup(api)
    await post(api, event("view"))
    assert (await fire(api, NOON_UTC + HOUR - 1)).fired == 0
    done = await fire(api, NOON_UTC + HOUR)
    (delivery,) = done.deliveries
    assert (delivery.title, delivery.body) == ("Still thinking about City stroller?",
                                               "City stroller: 10% off today only")
    assert (delivery.event, delivery.venue_id, delivery.campaign_id) == (
        "behaviour", "", "still_thinking")
    (decision,) = await decisions(api)
    assert (decision["event"], decision["venue_id"], decision["at"]) == (
        "behaviour", None, NOON_UTC)
    assert decision["considered"][0]["reason"] == "sent"


async def test_the_purchase_of_the_item_cancels_the_offer(api: Api) -> None:
    await setup(api)
    await post(api, event("view"))
    await post(api, event("purchase", at=NOON_UTC + 600))
    assert (await fire(api, NOON_UTC + HOUR)).fired == 0
    (decision,) = await decisions(api)
    assert decision["chosen"] is None
    (line,) = decision["considered"]
    assert (line["campaign_id"], line["reason"]) == ("still_thinking", "cancelled_by_follow_up")
    assert "purchase of stroller-9" in line["detail"]


async def test_a_view_and_its_purchase_in_one_batch_fire_nothing(api: Api) -> None:
    await setup(api)
    await post(api, event("view"), event("purchase", at=NOON_UTC + 30))
    assert (await fire(api, NOON_UTC + HOUR)).fired == 0


async def test_buying_another_item_does_not_cancel(api: Api) -> None:
    await setup(api)
    await post(api, event("view"), event("purchase", item="bottle-2", at=NOON_UTC + 60))
    assert len((await fire(api, NOON_UTC + HOUR)).deliveries) == 1


async def test_an_item_outside_the_filter_starts_nothing(api: Api) -> None:
    await setup(api)
    await post(api, event("view", item="racket", category="sports"))
    assert (await fire(api, NOON_UTC + HOUR)).fired == 0


async def test_a_reposted_view_and_a_second_round_send_once(api: Api) -> None:
    await setup(api)
    await post(api, event("view", event_id="v1"))
    await post(api, event("view", event_id="v1"))
    assert len((await fire(api, NOON_UTC + HOUR)).deliveries) == 1
    assert (await fire(api, NOON_UTC + HOUR + 5)).fired == 0
    assert len(await api.store.list_deliveries(TENANT, user_id="mum-1")) == 1


async def test_caps_apply_to_behaviour_pushes(api: Api) -> None:
    await setup(api)
    await post(api, event("view"), event("view", item="cot-1", at=NOON_UTC + 1))
    done = await fire(api, NOON_UTC + HOUR + 1)
    assert done.fired == 2 and len(done.deliveries) == 1  # min_gap: 30 min between pushes
    reasons = sorted(d.considered[0].reason for d in done.decisions)
    assert reasons == ["min_gap", "sent"]


async def test_a_message_due_in_quiet_hours_is_held_to_their_end(api: Api) -> None:
    await api.call("POST", "/v1/campaigns", expect=201,
                   json_body={**offer_campaign(), "offer_ttl_s": 12 * HOUR})
    evening = NOON_UTC + 9.5 * HOUR  # 21:30 UTC: due 22:30, in quiet hours 22:00-08:00
    await post(api, event("view", at=evening))
    (delivery,) = (await fire(api, evening + HOUR)).deliveries
    assert delivery.created_at == NOON_UTC + 20 * HOUR  # 08:00 the next morning


async def test_erasing_a_user_erases_their_pending_triggers(api: Api) -> None:
    await setup(api)
    await post(api, event("view"))
    _, erased = await api.call("DELETE", "/v1/users/mum-1", expect=200)
    assert erased["erased"]["behaviour_triggers"] == 1
    assert (await fire(api, NOON_UTC + HOUR)).fired == 0


@pytest.mark.needs_postgres
async def test_two_servers_fire_a_trigger_once(
    pg_store: PostgresStore, second_store: PostgresStore
) -> None:
    async with serving(pg_store) as a, serving(second_store) as b:
        await setup(a)
        await post(a, *(event("view", item=f"cot-{i}", user=f"mum-{i}") for i in range(20)))
        rounds = await asyncio.gather(fire(a, NOON_UTC + HOUR), fire(b, NOON_UTC + HOUR),
                                      fire(a, NOON_UTC + HOUR), fire(b, NOON_UTC + HOUR))
    assert sum(len(r.deliveries) for r in rounds) == 20
    assert len(await pg_store.list_deliveries(TENANT)) == 20


# --------------------------------------------------------------------------- also


async def mall_with_baby_condition(api: Api) -> None:
    await api.call("PUT", "/v1/venues/senate", json_body=venue_feature(), expect=201)
    body = campaign_body("mall_baby", status="active", trigger={
        "event": "enter",
        "also": {"kind": "view", "item": {"category": "baby"}, "within_s": 7 * 86_400}})
    await api.call("POST", "/v1/campaigns", json_body=body, expect=201)


async def walk_in(api: Api, user: str) -> dict[str, Any]:
    now = api.clock.now
    _, body = await api.call("POST", "/v1/pings", role=Role.SDK, expect=200, json_body={
        "pings": [ping(user=user, ts=now - 20), ping(user=user, ts=now - 10)]})
    assert [e["kind"] for e in body["events"]] == ["enter"]
    return dict(body)


async def test_also_sends_to_a_user_who_viewed_a_baby_item_this_week(api: Api) -> None:
    await mall_with_baby_condition(api)
    await post(api, event("view", at=NOON_UTC - 3 * 86_400))
    assert [d["campaign_id"] for d in (await walk_in(api, "mum-1"))["deliveries"]] == [
        "mall_baby"]


async def test_also_skips_a_user_without_the_behaviour(api: Api) -> None:
    await mall_with_baby_condition(api)
    await post(api, event("view", user="dad-2", category="sports", item="ball"),
               event("view", user="dad-2", at=NOON_UTC - 9 * 86_400))  # too long ago
    assert (await walk_in(api, "dad-2"))["deliveries"] == []
    (decision,) = await decisions(api, "dad-2")
    (line,) = decision["considered"]
    assert (line["reason"], line["detail"]) == ("behaviour_condition_unmet",
                                                "no view of baby in the 604800 s before")


# --------------------------------------------------------------------------- learned tags


async def test_a_location_audience_sees_learned_tags(api: Api) -> None:
    await api.call("PUT", "/v1/venues/senate", json_body=venue_feature(), expect=201)
    body = campaign_body("fans", status="active", audience={"any_of_tags": ["sports_fan"]})
    await api.call("POST", "/v1/campaigns", json_body=body, expect=201)
    await post(api, *(event("view", user="fan-1", item=f"ball-{i}", category="sports",
                            at=NOON_UTC - i * 3600) for i in range(5)))
    assert [d["campaign_id"] for d in (await walk_in(api, "fan-1"))["deliveries"]] == ["fans"]
    assert (await walk_in(api, "mum-1"))["deliveries"] == []
    (decision,) = await decisions(api, "mum-1")
    assert decision["considered"][0]["reason"] == "not_in_audience"
