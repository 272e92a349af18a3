"""Behaviour events, a behaviour-triggered offer and a scheduled slot give the same
decisions single node, shared PostgreSQL and partitioned (1, 2 and 4 workers).

The case study in small, on one virtual clock from 08:00 UTC: ten parents with
profiles in UTC. At 08:00 every one views a City stroller, and the first five buy
baby bottles (the default rules then tag them ``mother_baby``); at 08:20 two of those
buy the stroller. Campaigns: "viewed a baby item, no purchase of it within the hour →
its offer" and the 10:00 ``mother_baby`` push. Events are posted over HTTP at their
virtual time, and every five virtual minutes the due work fires: on a node its timer
round, in the partitioned mode each worker's owner round (once every partition has
caught up with the stream). Every user's stored behaviour events and decisions must
be the same bytes in every deployment.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.api.context import CORES, STORE
from server.app import GatewayOptions, create_app
from server.auth import Role
from server.cluster.local import LocalNats
from server.cluster.owner_rounds import owner_round
from server.cluster.stream import StreamSettings, open_cluster
from server.outages import FailureLog
from server.pipeline import fire_all_timers
from server.store import MemoryStore, PolicyRecord, PostgresStore, Store
from tests.cluster.test_identity import (
    PARTITIONS,
    caught_up,
    http,
    in_process_workers,
    reset_stream,
    same,
    share_partitions,
)
from tests.decisions.builders import at, campaign, profile
from tests.server.api.conftest import FakeClock, add_key, make_settings
from tests.server.conftest import TENANT, truncate_all
from tests.server.scheduled.builders import relaxed_policy
from triggers.decisions import Campaign

pytestmark = [pytest.mark.needs_postgres, pytest.mark.asyncio(loop_scope="session")]

START = at("2026-12-07 08:00", "UTC")
END = at("2026-12-07 10:30", "UTC")
STEP_S = 300.0
PARENTS = [f"parent-{i}" for i in range(10)]
MOTHERS = PARENTS[:5]
STROLLER_BUYERS = PARENTS[1:4:2]

Fire = Callable[[], Awaitable[None]]


def campaigns() -> list[Campaign]:
    offer = campaign("still-thinking", venues={}, trigger={"behaviour": {
        "kind": "view", "item": {"category": "baby"}, "delay_s": 3600,
        "unless": {"kind": "purchase", "same_item": True, "within_s": 3600}}},
        variants=[{"id": "a", "title": "Still thinking about {{ item.name }}?",
                   "body": "10% off today"}])
    push = campaign("mother-baby", venues={}, trigger={"scheduled": {"times": ["10:00"]}},
                    audience={"any_of_tags": ["mother_baby"]},
                    variants=[{"id": "warm", "title": "Hei", "body": "A quiet moment"}])
    return [offer, push]


def item(item_id: str, name: str) -> dict[str, Any]:
    return {"id": item_id, "name": name, "category": "baby"}


def events_by_time() -> dict[float, list[dict[str, Any]]]:
    stroller = item("stroller-9", "City stroller")
    first = [{"event_id": f"view-{u}", "user_id": u, "ts": START, "kind": "view",
              "item": stroller} for u in PARENTS]
    first += [{"event_id": f"bottles-{u}", "user_id": u, "ts": START + 60,
               "kind": "purchase", "item": item("bottle-2", "Baby bottles")} for u in MOTHERS]
    later = [{"event_id": f"stroller-{u}", "user_id": u, "ts": START + 1200,
              "kind": "purchase", "item": stroller} for u in STROLLER_BUYERS]
    return {START + 60: first, START + 1200: later}


async def prepare(store: Store) -> str:
    await store.ensure_tenant(TENANT)
    await store.put_policy(TENANT, PolicyRecord(relaxed_policy(default_timezone="UTC")))
    for found in campaigns():
        await store.create_campaign(TENANT, found)
    for user in PARENTS:
        await store.put_profile(TENANT, profile(user, attributes={"timezone": "UTC"}))
    return await add_key(store, TENANT, Role.SDK)


async def drive(client: TestClient[Any, Any], key: str, clock: FakeClock, fire: Fire) -> None:
    due = events_by_time()
    now = START
    while now <= END:
        clock.now = now
        for batch_at in [t for t in due if t <= now]:
            resp = await client.post("/v1/events", json={"events": due.pop(batch_at)},
                                     headers={"Authorization": f"Bearer {key}"})
            body = await resp.json()
            assert resp.status == 200 and body["rejected"] == [], body
        await fire()
        now += STEP_S


async def stored(store: Store) -> bytes:
    out: dict[str, Any] = {}
    for user in PARENTS:
        behaviour = await store.list_behaviour(TENANT, user, limit=1000)
        decisions = await store.list_decisions(TENANT, user, limit=1000)
        out[user] = {
            "events": sorted([r.event_key, r.event.model_dump(mode="json"), r.received_at]
                             for r in behaviour),
            "decisions": sorted([d.decision_key, d.decision.to_json()] for d in decisions),
        }
    return json.dumps(out, sort_keys=True).encode()


async def run_node(store: Store) -> bytes:
    clock = FakeClock(START)
    key = await prepare(store)
    app = create_app(make_settings(), store=store, clock=clock)
    async with http(app) as client:
        async def fire() -> None:
            await fire_all_timers(app[STORE], app[CORES], clock, behaviour=app[STORE],
                                  schedule=app[STORE])

        await drive(client, key, clock, fire)
    return await stored(store)


async def run_partitioned(store: PostgresStore, urls: list[str], n_workers: int) -> bytes:
    await reset_stream(urls)
    clock = FakeClock(START)
    key = await prepare(store)
    stream = StreamSettings(partitions=PARTITIONS, replicas=3)
    app = create_app(make_settings(), store=store, clock=clock,
                     gateway=GatewayOptions(tuple(urls), stream))
    cluster = await open_cluster(urls, stream, name="geopush-test-workers")
    workers = in_process_workers(cluster, store, clock, n_workers)
    failures = FailureLog(logging.getLogger("geopush.test"), "owner rounds")
    try:
        await share_partitions(workers)

        async def fire() -> None:
            await caught_up(cluster.js, workers)
            for worker in workers:
                for runner in worker.runners.values():
                    await runner.caught_up_at()  # as a timer round does
                await owner_round(worker, failures)

        async with http(app) as client:
            await drive(client, key, clock, fire)
    finally:
        for worker in workers:
            await worker.stop()
        await cluster.close()
    return await stored(store)


async def test_events_offers_and_a_slot_decide_the_same_in_every_mode(
    pg_store: PostgresStore, tmp_path: Path,
) -> None:
    single = await run_node(MemoryStore(clock=FakeClock(START)))
    decoded = json.loads(single)
    reasons = {u: sorted(json.loads(d[1])["considered"][0]["reason"]
                         for d in decoded[u]["decisions"]) for u in PARENTS}
    assert reasons["parent-0"] == ["sent", "sent"]  # the offer, then the 10:00 push
    assert reasons["parent-1"] == ["cancelled_by_follow_up", "sent"]
    assert reasons["parent-9"] == ["sent"]  # the offer only: not a mother
    same(await run_node(pg_store), single, "shared PostgreSQL")
    with LocalNats.start(3, root=tmp_path / "nats") as nats:
        for n_workers in (1, 2, 4):
            await truncate_all(pg_store)
            got = await run_partitioned(pg_store, nats.urls, n_workers)
            same(got, single, f"partitioned, {n_workers} workers")
