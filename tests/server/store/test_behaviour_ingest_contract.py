"""Behaviour events as both stores keep them: what goes in comes back the same (every
field, odd values included), in time order, and each user's features are the fold of
their events, whichever way the store packs them."""

from __future__ import annotations

import pytest

from server.store import Store
from server.store.roles import BehaviourRecord
from tests.behaviour.builders import MONDAY_NOON
from triggers.behaviour.events import BehaviourEvent
from triggers.behaviour.features import EMPTY, fold

pytestmark = pytest.mark.asyncio(loop_scope="session")

RECEIVED = MONDAY_NOON + 5.0

ODD_EVENTS = [
    {"event_id": "e-1", "user_id": "mia", "ts": MONDAY_NOON, "kind": "view",
     "item": {"id": "stroller-9", "name": "City stroller \u00e9\u4e2d", "category": "baby",
              "tags": ["outdoor", "city"], "price": 349.0, "currency": "EUR",
              "url": "https://shop.example/stroller-9",
              "image_url": "https://cdn.example/stroller-9.jpg"},
     "props": {"screen": "pdp", "position": 3, "ratio": 0.125, "promo": True, "ref": None}},
    {"user_id": "mia", "ts": "2026-03-02T12:10:00+00:00", "kind": "purchase",
     "item": {"id": "stroller-9", "price": 0}},
    {"user_id": "mia", "ts": MONDAY_NOON - 60.5, "kind": "app_open"},
    # An integer beyond 64 bits: JSON takes it, orjson does not write it.
    {"user_id": "mia", "ts": MONDAY_NOON + 1, "kind": "listen.track",
     "props": {"plays": 2**70}},
    {"user_id": "leo", "ts": 1e9, "kind": "search", "props": {"q": "p\u00e4\u00e4si\u00e4inen"}},
]


def _records() -> list[BehaviourRecord]:
    return [BehaviourRecord.of(BehaviourEvent.model_validate(e), RECEIVED)
            for e in ODD_EVENTS]


async def test_a_batch_of_plain_values_comes_back_as_it_went_in(store: Store,
                                                                tenant: str) -> None:
    records = [r for r in _records() if r.event.kind != "listen.track"]
    assert await store.ingest_behaviour(tenant, records, now=RECEIVED) == records
    listed = await store.list_behaviour(tenant, "mia")
    assert [(r.event_key, r.event, r.received_at) for r in listed] == [
        (r.event_key, r.event, r.received_at) for r in (records[2], records[0], records[1])]
    (leo,) = await store.list_behaviour(tenant, "leo")
    assert leo.event == records[3].event


async def test_events_come_back_as_they_went_in_in_time_order(store: Store,
                                                               tenant: str) -> None:
    records = _records()
    assert await store.ingest_behaviour(tenant, records, now=RECEIVED) == records
    listed = await store.list_behaviour(tenant, "mia")
    mine = sorted((r for r in records if r.event.user_id == "mia"),
                  key=lambda r: (r.event.ts, r.event_key))
    assert [(r.event_key, r.event, r.received_at) for r in listed] == [
        (r.event_key, r.event, r.received_at) for r in mine]
    (track,) = [r.event for r in listed if r.event.kind == "listen.track"]
    assert track.props["plays"] == 2**70
    since = await store.list_behaviour(tenant, "mia", since=MONDAY_NOON, limit=2)
    assert [r.event.kind for r in since] == ["listen.track", "purchase"]


async def test_features_are_the_fold_of_each_users_events(store: Store, tenant: str) -> None:
    records = _records()
    first, rest = [r.event for r in records[:2]], [r.event for r in records[2:]]
    await store.ingest_behaviour(tenant, records[:2], now=RECEIVED)
    await store.ingest_behaviour(tenant, records, now=RECEIVED)  # the first two again
    mia = await store.get_features(tenant, "mia")
    assert mia is not None
    assert mia.to_json() == fold(fold(EMPTY, first), rest[:2]).to_json()
    assert mia.events == 4 and mia.bought == {"stroller-9": MONDAY_NOON + 600}
    leo = await store.get_features(tenant, "leo")
    assert leo is not None and leo.to_json() == fold(EMPTY, rest[2:]).to_json()
