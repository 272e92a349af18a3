"""POST /v1/events: behaviour events in, on both stores — idempotent, per-item rejects,
gzip, limits, roles; GET /v1/users/{id} shows learned tags with provenance; erasure;
PUT /v1/tag-rules."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server.auth import Role
from server.store import MemoryStore, PostgresStore
from tests.server.api.conftest import NOON_UTC, Api, FakeClock, gzipped, serving
from tests.server.conftest import TENANT
from tests.server.waiting import eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")

DAY_S = 86_400.0


def view(user: str = "u1", *, item: str = "racket-7", category: str = "sports",
         at: float = NOON_UTC, **extra: Any) -> dict[str, Any]:
    return {"user_id": user, "ts": at, "kind": "view", **extra,
            "item": {"id": item, "name": f"Item {item}", "category": category, "price": 89.0}}


async def post(api: Api, events: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    _, body = await api.call("POST", "/v1/events", role=Role.SDK,
                             json_body={"events": events}, expect=200, **kwargs)
    assert isinstance(body, dict)
    return body


async def test_a_reposted_batch_is_stored_once(api: Api) -> None:
    batch = [view(event_id="e1"), view(item="shoe-2", at=NOON_UTC + 60, event_id="e2"),
             view(item="ball-3", at=NOON_UTC + 120)]  # no event_id: keyed by a hash
    assert await post(api, batch) == {"accepted": 3, "stored": 3, "duplicates": 0,
                                      "rejected": []}
    assert await post(api, batch) == {"accepted": 3, "stored": 0, "duplicates": 3,
                                      "rejected": []}
    assert len(await api.store.list_behaviour(TENANT, "u1")) == 3
    features = await api.store.get_features(TENANT, "u1")
    assert features is not None and features.events == 3  # folded once


async def test_the_same_event_id_twice_in_one_batch_keeps_the_first(api: Api) -> None:
    body = await post(api, [view(event_id="e1"), view(item="other", event_id="e1")])
    assert (body["stored"], body["duplicates"]) == (1, 1)
    (stored,) = await api.store.list_behaviour(TENANT, "u1")
    assert stored.event.item is not None and stored.event.item.id == "racket-7"


async def test_bad_events_are_rejected_one_by_one_naming_the_field(api: Api) -> None:
    bad_price = view(item="x")
    bad_price["item"]["price"] = -5
    body = await post(api, [
        view(), {"ts": NOON_UTC, "kind": "view"}, bad_price,
        view(at=NOON_UTC + 3600), {"user_id": "u2", "ts": NOON_UTC, "kind": "no spaces"},
        view(item="nul\u0000"),
    ])
    assert body["accepted"] == 1 and body["stored"] == 1
    assert [(r["index"], r["code"], r["field"]) for r in body["rejected"]] == [
        (1, "missing", "events[1].user_id"),
        (2, "greater_than_equal", "events[2].item.price"),
        (3, "future_ts", "events[3].ts"),
        (4, "string_pattern_mismatch", "events[4].kind"),
        (5, "invalid_text", "events[5]"),
    ]


async def test_a_gzipped_batch_is_read(api: Api) -> None:
    resp = await api.client.post(
        "/v1/events", data=gzipped({"events": [view(), view(item="b", at=NOON_UTC - 5)]}),
        headers={**api.auth(Role.SDK), "Content-Encoding": "gzip",
                 "Content-Type": "application/json"})
    assert resp.status == 200
    assert (await resp.json())["stored"] == 2


@pytest.mark.parametrize(("body", "code", "field"), [
    ({"events": [view()] * 1001}, "batch_too_large", "events"),
    ({"events": {}}, "validation_error", "events"),
    ({"events": [], "pings": []}, "validation_error", "pings"),
    ([], "validation_error", None),
])
async def test_a_bad_batch_is_refused_whole(api: Api, body: Any, code: str,
                                            field: str | None) -> None:
    _, answer = await api.call("POST", "/v1/events", role=Role.SDK, json_body=body,
                               expect=422)
    assert (answer["error"]["code"], answer["error"]["field"]) == (code, field)


async def test_a_manager_key_may_not_post_events_nor_an_sdk_key_read_a_user(api: Api) -> None:
    await api.call("POST", "/v1/events", role=Role.MANAGER, json_body={"events": []},
                   expect=403)
    await api.call("GET", "/v1/users/u1", role=Role.SDK, expect=403)


async def test_the_user_view_shows_a_learned_tag_with_its_provenance(api: Api) -> None:
    await api.call("PUT", "/v1/users/u1", json_body={"tags": ["vip"]}, expect=201)
    await post(api, [view(item=f"racket-{i}", at=NOON_UTC - i * DAY_S) for i in range(7)])
    _, user = await api.call("GET", "/v1/users/u1", role=Role.MANAGER, expect=200)
    assert user["tags"] == ["vip"]  # the tenant's tags stay apart
    (tag,) = user["learned_tags"]
    assert (tag["tag"], tag["reason"]) == ("sports_fan", "7 views of sports in 30 days")
    assert user["recently_viewed"]["id"] == "racket-0"
    (count,) = user["behaviour"]["counts"]
    assert (count["kind"], count["category"], count["last_7_days"], count["last_30_days"]) == (
        "view", "sports", 7, 7)
    assert user["behaviour"]["active_hours_utc"][12] == 7


async def test_a_learned_tag_lapses_as_time_passes(api: Api) -> None:
    await post(api, [view(item=f"racket-{i}") for i in range(5)])
    api.clock.advance(31 * DAY_S)
    _, user = await api.call("GET", "/v1/users/u1", role=Role.MANAGER, expect=200)
    assert user["learned_tags"] == []
    assert user["has_profile"] is False


async def test_a_purchase_takes_the_item_off_viewed_not_bought(api: Api) -> None:
    await post(api, [view(item="stroller"), view(item="bottle", at=NOON_UTC + 60),
                     {**view(item="bottle", at=NOON_UTC + 120), "kind": "purchase"}])
    _, user = await api.call("GET", "/v1/users/u1", role=Role.MANAGER, expect=200)
    assert [v["id"] for v in user["behaviour"]["viewed_not_bought"]] == ["stroller"]


async def test_tenant_tag_rules_replace_the_defaults(api: Api) -> None:
    _, rules = await api.call("GET", "/v1/tag-rules", role=Role.MANAGER, expect=200)
    assert rules["default"] is True
    assert [r["tag"] for r in rules["rules"]] == ["sports_fan", "food_delivery_frequent",
                                                   "mother_baby"]
    mine = {"rules": [{"tag": "window_shopper", "any": [
        {"kind": "view", "min_count": 2, "within_days": 1}]}]}
    await api.call("PUT", "/v1/tag-rules", role=Role.MANAGER, json_body=mine, expect=200)
    await post(api, [view(item="a"), view(item="b", category="garden")])
    _, user = await api.call("GET", "/v1/users/u1", role=Role.MANAGER, expect=200)
    assert [(t["tag"], t["reason"]) for t in user["learned_tags"]] == [
        ("window_shopper", "2 views in 1 day")]


async def test_bad_tag_rules_are_refused_naming_the_field(api: Api) -> None:
    bad = {"rules": [{"tag": "x", "any": [{"kind": "view", "within_days": 400}]}]}
    _, answer = await api.call("PUT", "/v1/tag-rules", role=Role.MANAGER, json_body=bad,
                               expect=422)
    assert answer["error"]["field"] == "rules[0].any[0].within_days"


async def test_erasing_a_user_erases_their_events_and_features(api: Api) -> None:
    await post(api, [view(), view(user="u2")])
    _, erased = await api.call("DELETE", "/v1/users/u1", expect=200)
    assert erased["erased"]["behaviour_events"] == 1
    assert erased["erased"]["behaviour_features"] == 1
    assert erased["erased"]["behaviour_triggers"] == 0
    await api.call("GET", "/v1/users/u1", role=Role.MANAGER, expect=404)
    assert await api.store.list_behaviour(TENANT, "u1") == []
    assert len(await api.store.list_behaviour(TENANT, "u2")) == 1


async def test_old_events_are_pruned_by_when_they_arrived(api: Api) -> None:
    await post(api, [view()])
    api.clock.advance(DAY_S)
    await post(api, [view(item="later", at=NOON_UTC + DAY_S)])
    assert await api.store.prune_behaviour(TENANT, before=NOON_UTC + 1, limit=100) == 1
    assert [r.event.item.id for r in await api.store.list_behaviour(TENANT, "u1")
            if r.event.item] == ["later"]
    assert (await api.store.get_features(TENANT, "u1")).events == 2  # type: ignore[union-attr]


@pytest.mark.needs_postgres
async def test_two_servers_on_one_database_store_and_fold_an_event_once(
    pg_store: PostgresStore, second_store: PostgresStore
) -> None:
    events = [view(item=f"racket-{i}", event_id=f"e{i}") for i in range(50)]
    async with serving(pg_store) as a, serving(second_store) as b:
        answers = await asyncio.gather(*(post(node, events) for node in (a, b, a, b)))
    assert sum(x["stored"] for x in answers) == 50
    assert sum(x["duplicates"] for x in answers) == 150
    features = await pg_store.get_features(TENANT, "u1")
    assert features is not None and features.events == 50


async def test_housekeeping_prunes_behaviour_events_past_their_retention(
    memory_store: MemoryStore,
) -> None:
    clock = FakeClock()
    async with serving(memory_store, clock, housekeeping_interval_s=0.02,
                       behaviour_retention_days=1.0) as api:
        await post(api, [view()])
        clock.advance(2 * DAY_S)
        await post(api, [view(item="recent", at=clock.now - 5)])

        async def one_left() -> bool:
            return len(await memory_store.list_behaviour(TENANT, "u1")) == 1

        await eventually(one_left)
