"""Training learns from more than behaviour events, on both stores: visits to tagged
venues and feedback on categorised campaigns reach the interest model, push opens reach
the send-time model, and the served send-time profile follows new opens between
trainings."""

from __future__ import annotations

import pytest

from server.models import (
    REFRESH_S,
    ModelCache,
    _interest_scorer,
    fit_interests,
    read_training_data,
    train_tenant,
)
from server.store import DeliveryStatus, EventRecord
from server.store.roles import Store
from server.store.roles.behaviour import BehaviourRecord
from tests.server.conftest import OTHER_TENANT
from tests.server.models.test_lifecycle import DAY, START, _event, _habits
from tests.server.store.builders import FORUM, KLUUVI, campaign, delivery, venue
from triggers.decisions import FeedbackKind
from triggers.learning.coding import OPEN, VISIT
from triggers.presence_events import Confidence, EventKind, PresenceEvent

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOW = START + 21 * DAY


def _shoppers(users: int = 30) -> list[BehaviourRecord]:
    """Three weeks of views of sports and books by ``users`` users: the rest of the
    tenant, so the model has popularity to rank against."""
    return [_event(f"s{u}", START + day * DAY + 3600 * (9 + u % 8), "view",
                   ("sports", "books")[(u + day) % 2])
            for u in range(users) for day in range(21)]


def _visit(user_id: str, venue_id: str, at: float, n: int,
           kind: EventKind = EventKind.ENTER) -> EventRecord:
    event = PresenceEvent(user_id, venue_id, kind, at, f"{user_id}-v{n}", None, Confidence.HIGH)
    return EventRecord(f"{user_id}:{venue_id}:{n}:{kind.value}", event, at)


async def _store_visits(store: Store, tenant: str, rows: list[EventRecord]) -> None:
    async with store.batch(tenant, sorted({r.event.user_id for r in rows})) as tx:
        await tx.insert_events(rows)


async def _tagged_venues(store: Store, tenant: str) -> None:
    await store.put_venues(tenant, [venue(FORUM, tags=("mother_baby", "fashion")),
                                    venue(KLUUVI, tags=())])


async def _opened_pushes(store: Store, tenant: str, user_id: str, times: list[float],
                         *, clicked: bool = False) -> None:
    """Pushes of campaign ``c1`` sent to the user at each time, each opened a minute
    later (and clicked two minutes later)."""
    async with store.batch(tenant, [user_id]) as tx:
        created = await tx.insert_deliveries(
            [delivery(user_id, key=f"p{i:03d}", at=t) for i, t in enumerate(times)])
    for row, t in zip(created, times, strict=True):
        await store.update_delivery(tenant, row.delivery_id, status=DeliveryStatus.SENT,
                                    now=t + 1)
        await store.record_feedback(tenant, row.delivery_id, FeedbackKind.OPENED, now=t + 60)
        if clicked:
            await store.record_feedback(tenant, row.delivery_id, FeedbackKind.CLICKED,
                                        now=t + 120)


async def test_a_visitor_of_a_tagged_venue_gets_an_interest_in_its_tags_after_training(
        store: Store, tenant: str) -> None:
    await _tagged_venues(store, tenant)
    await store.ingest_behaviour(tenant, _shoppers())
    visits = [_visit("mari", FORUM, START + day * DAY + 15 * 3600, day)
              for day in range(0, 21, 2)]
    untagged = [_visit("mari", KLUUVI, START + day * DAY + 17 * 3600, day)
                for day in range(0, 21, 3)]
    await _store_visits(store, tenant, visits + untagged)
    data = await read_training_data(store, tenant)
    scores = _interest_scorer(fit_interests(data, NOW).blob, NOW).scores("mari")
    assert set(scores) >= {"mother_baby", "fashion"}
    assert min(scores["mother_baby"], scores["fashion"]) > max(
        scores.get("sports", 0.0), scores.get("books", 0.0))


async def test_opening_and_clicking_a_categorised_offer_raises_that_interest(
        store: Store, tenant: str) -> None:
    await store.create_campaign(tenant, campaign("c1", categories=["mother_baby"]))
    await store.ingest_behaviour(tenant, [
        *_shoppers(), *(_event("li", START + day * DAY + 3600 * 19, "view", "books")
                        for day in range(21))])
    before = _interest_scorer(fit_interests(await read_training_data(store, tenant), NOW).blob,
                              NOW).scores("li")
    await _opened_pushes(store, tenant, "li", [NOW - d * DAY for d in (1, 3, 5, 8)],
                         clicked=True)
    after = _interest_scorer(fit_interests(await read_training_data(store, tenant), NOW).blob,
                             NOW).scores("li")
    assert after.get("mother_baby", 0.0) > before.get("mother_baby", 0.0)
    assert "mother_baby" in after


async def test_training_reads_events_visits_and_feedback_each_in_pages(
        store: Store, tenant: str) -> None:
    await _tagged_venues(store, tenant)
    await store.create_campaign(tenant, campaign("c1", categories=["mother_baby", "toys"]))
    events = _habits(users=2, days=2)
    await store.ingest_behaviour(tenant, events)
    await _store_visits(store, tenant, [
        _visit("u0", FORUM, START + 3600, 1),
        _visit("u0", FORUM, START + 3700, 1, EventKind.EXIT),
        _visit("u1", FORUM, START + 7200, 2),
        _visit("u1", KLUUVI, START + 9000, 3)])
    await _store_visits(store, OTHER_TENANT, [_visit("u9", FORUM, START, 1)])
    await _opened_pushes(store, tenant, "u1", [START + 4 * 3600, START + 5 * 3600],
                         clicked=True)
    data = await read_training_data(store, tenant, page=3)
    visits, feedback = data.kind == VISIT, data.ts > START + 4 * 3600 + 30
    assert int(visits.sum()) == 4  # two ENTERs at Forum, two tags each; no EXIT, no Kluuvi
    assert int((feedback & (data.kind == OPEN)).sum()) == 4  # two opens, two categories
    assert data.timed is not None
    assert int(data.timed.sum()) == len(events) + 2 + 4  # each visit and feedback once
    assert len(data.ts) == len(events) + 4 + 8
    cursor, paged = None, []
    while page := await store.training_feedback(tenant, after=cursor, limit=1):
        paged += [s for _c, s in page]
        cursor = page[-1][0]
    assert [(s.kind, s.ts - START) for s in paged] == [  # by push, then "id/kind"
        ("click", 4 * 3600 + 120), ("open", 4 * 3600 + 60),
        ("click", 5 * 3600 + 120), ("open", 5 * 3600 + 60)]
    assert {s.categories for s in paged} == {("mother_baby", "toys")}


async def test_an_erased_user_leaves_no_visit_or_feedback_to_train_on(
        store: Store, tenant: str) -> None:
    await _tagged_venues(store, tenant)
    await _store_visits(store, tenant, [_visit("mari", FORUM, START, 1)])
    await _opened_pushes(store, tenant, "mari", [START + 3600])
    assert len((await read_training_data(store, tenant)).ts) == 3
    await store.erase_user(tenant, "mari")
    assert await store.training_visits(tenant, after=None, limit=10) == []
    assert await store.training_feedback(tenant, after=None, limit=10) == []


async def test_a_best_hour_moves_to_new_evening_opens_before_the_next_training(
        store: Store, tenant: str) -> None:
    await store.ingest_behaviour(tenant, _habits(users=60, days=21))
    done = {m.kind: m for m in await train_tenant(store, tenant, NOW, kinds=["sendtime"])}
    assert done["sendtime"].promoted
    cache = ModelCache(store)
    trained = await cache.view(tenant, NOW)
    assert trained.local_profile("u0", "UTC", NOW) is not None
    assert _best(trained.local_profile("u0", "UTC", NOW)) == 8
    evenings = [NOW + day * DAY + 21 * 3600 + 300 for day in range(12)]
    await store.ingest_behaviour(tenant, [
        _event("u0", t + k * 600, "app_open", None) for t in evenings for k in range(3)])
    await _opened_pushes(store, tenant, "u0", [t + 1800 for t in evenings])
    later = NOW + 13 * DAY
    followed = await cache.view(tenant, later)
    assert _best(followed.local_profile("u0", "UTC", later)) == 21
    assert followed.facts("u0", later - 13 * DAY + 21 * 3600).open_chance == 1.0
    assert _best(followed.local_profile("u1", "UTC", later)) == 13
    assert [m.version for m in await store.list_models(tenant, "sendtime")] == [1]
    assert REFRESH_S < DAY


def _best(profile: list[float] | None) -> int:
    assert profile is not None
    return max(range(24), key=lambda h: (profile[h], -h))
