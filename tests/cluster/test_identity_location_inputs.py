"""Location decisions read everything a node reads in the partitioned mode too: recent
behaviour for an ``also`` condition, learned tags and a promoted interest model.

The flagship Saturday (``test_identity``'s scenario and drive) with three more
campaigns and what they read, stored the same way before each deployment:

- "dwelling in a mall and viewed a baby item this week" (``also``): Aino viewed a
  stroller two days before; Mikko viewed nothing of the kind;
- an enter campaign for the learned tag ``sports_fan``: Mikko bought running shoes the
  day before (the default tag rules then tag him); Aino bought nothing of sports;
- a dwell campaign in Forum's stores for users whose predicted interest in ``baby``
  reaches 0.5, against an interest model promoted for the tenant: Aino's history is
  baby items, the other shoppers' sports and books.

Each of the five deployments (single node, shared PostgreSQL, partitioned with 1, 2 and
4 workers) must store the same bytes of events and decisions, and the single node's
decisions must show each campaign deciding on what it read.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from server.api.context import CORES, STORE
from server.app import GatewayOptions, create_app
from server.auth import Role
from server.cli.scenario_files import load_scenario
from server.cli.serve import preload_scenario
from server.cluster.local import LocalNats
from server.cluster.stream import StreamSettings, open_cluster
from server.models import Fitted, TrainingData, fit_interests
from server.pipeline import fire_all_timers
from server.store import MemoryStore, PostgresStore, Store
from server.store.roles.behaviour import BehaviourRecord
from tests.cluster.test_identity import (
    PARTITIONS,
    SCENARIO,
    caught_up,
    drive,
    http,
    in_process_workers,
    poster,
    reset_stream,
    same,
    share_partitions,
    stored,
)
from tests.decisions.builders import campaign
from tests.server.api.conftest import FakeClock, add_key, make_settings
from tests.server.conftest import TENANT, truncate_all
from triggers.behaviour.events import BehaviourEvent
from triggers.learning.coding import PURCHASE, VIEW, Vocabulary
from triggers.simulation.scenario import Scenario

pytestmark = [pytest.mark.needs_postgres, pytest.mark.asyncio(loop_scope="session")]

DAY_S = 86_400.0
FORUM = "osm:way/289767497"
SHOPPERS = [f"shopper-{i}" for i in range(30)]


def extra_campaigns() -> list[Any]:
    viewed_baby = campaign(
        "mall-baby-browsers", venues={"kinds": ["mall"]}, priority=6,
        trigger={"event": "dwell", "dwell_s": 240, "also": {
            "kind": "view", "item": {"category": "baby"}, "within_s": 7 * DAY_S}},
        variants=[{"id": "a", "title": "Still thinking about that stroller?",
                   "body": "The baby corner is on the 2nd floor."}])
    fans = campaign(
        "mall-sports-fans", venues={"kinds": ["mall"]}, priority=7,
        audience={"any_of_tags": ["sports_fan"]},
        variants=[{"id": "a", "title": "Game day, {{ user.first_name }}",
                   "body": "Jerseys -15 % today."}])
    interested = campaign(
        "forum-baby-interest", venues={"parent": FORUM}, priority=8,
        trigger={"event": "dwell", "dwell_s": 120},
        audience={"interests": {"baby": {"min": 0.5}}},
        variants=[{"id": "a", "title": "Picked for you", "body": "Baby week at Forum."}])
    return [viewed_baby, fans, interested]


def behaviour(start: float) -> list[BehaviourRecord]:
    events = [
        {"event_id": "aino-stroller", "user_id": "aino", "ts": start - 2 * DAY_S,
         "kind": "view", "item": {"id": "stroller-9", "name": "City stroller",
                                  "category": "baby"}},
        {"event_id": "mikko-shoes", "user_id": "mikko", "ts": start - DAY_S,
         "kind": "purchase", "item": {"id": "shoes-3", "name": "Trail shoes",
                                      "category": "sports"}},
    ]
    return [BehaviourRecord.of(event, event.ts)
            for event in map(BehaviourEvent.model_validate, events)]


def interest_model(start: float) -> Fitted:
    """Three weeks before the Saturday: Aino views baby items every other day, thirty
    other shoppers sports and books."""
    rows: list[tuple[str, str, int, float]] = []
    for day in range(21):
        noon = start - (21 - day) * DAY_S + 3 * 3600
        rows += [(u, ("sports", "books")[(n + day) % 2], VIEW, noon + 60 * n)
                 for n, u in enumerate(SHOPPERS)]
        if day % 2 == 0:
            rows.append(("aino", "baby", VIEW if day % 4 else PURCHASE, noon))
        rows.append(("mikko", "sports", VIEW, noon))
    users, categories = Vocabulary(), Vocabulary()
    data = TrainingData(
        users, categories, users.index([r[0] for r in rows]),
        categories.index([r[1] for r in rows]),
        np.array([r[2] for r in rows], dtype=np.int8),
        np.array([r[3] for r in rows], dtype=np.float64))
    return fit_interests(data, start)


async def prepare(store: Store, scenario: Scenario, model: Fitted) -> str:
    await preload_scenario(store, scenario, TENANT)
    for found in extra_campaigns():
        await store.create_campaign(TENANT, found)
    await store.ingest_behaviour(TENANT, behaviour(scenario.start_ts),
                                 now=scenario.start_ts)
    await store.add_model(TENANT, "interests", model.blob, model.evaluation, promote=True)
    return await add_key(store, TENANT, Role.SDK)


async def run_node(store: Store, scenario: Scenario, model: Fitted) -> bytes:
    """A node as ``test_identity`` runs one; its app holds the promoted models."""
    clock = FakeClock(scenario.start_ts)
    key = await prepare(store, scenario, model)
    app = create_app(make_settings(), store=store, clock=clock)
    async with http(app) as client:
        async def fire() -> None:
            await fire_all_timers(app[STORE], app[CORES], clock)

        users = await drive(scenario, clock, poster(client, key), fire)
    return await stored(store, users)


async def run_partitioned(store: PostgresStore, scenario: Scenario, model: Fitted,
                          urls: list[str], n_workers: int) -> bytes:
    await reset_stream(urls)
    clock = FakeClock(scenario.start_ts)
    key = await prepare(store, scenario, model)
    stream = StreamSettings(partitions=PARTITIONS, replicas=3)
    settings = make_settings()
    app = create_app(settings, store=store, clock=clock,
                     gateway=GatewayOptions(tuple(urls), stream))
    cluster = await open_cluster(urls, stream, name="geopush-test-workers")
    workers = in_process_workers(cluster, store, clock, n_workers)
    try:
        await share_partitions(workers)

        async def fire() -> None:
            await caught_up(cluster.js, workers)
            for worker in workers:
                await worker.fire_timers()

        async with http(app) as client:
            users = await drive(scenario, clock, poster(client, key), fire)
        await caught_up(cluster.js, workers)
    finally:
        for worker in workers:
            await worker.stop()
        await cluster.close()
    return await stored(store, users)


def reasons(single: bytes, user: str) -> dict[str, list[str]]:
    """The user's decision lines by campaign: each line's reason, in decision order."""
    out: dict[str, list[str]] = {}
    for _, body in json.loads(single)[user]["decisions"]:
        for line in json.loads(body)["considered"]:
            out.setdefault(line["campaign_id"], []).append(line["reason"])
    return out


async def test_behaviour_learned_tags_and_models_decide_the_same_in_every_mode(
    pg_store: PostgresStore, tmp_path: Path,
) -> None:
    scenario = load_scenario(SCENARIO)
    model = await asyncio.to_thread(interest_model, scenario.start_ts)
    single = await run_node(MemoryStore(clock=FakeClock(scenario.start_ts)), scenario, model)
    aino, mikko = reasons(single, "aino"), reasons(single, "mikko")
    assert "sent" in aino["mall-baby-browsers"]
    assert "sent" not in mikko["mall-baby-browsers"]
    assert "sent" in mikko["mall-sports-fans"]
    assert "sent" not in aino["mall-sports-fans"]
    assert "sent" in aino["forum-baby-interest"]
    same(await run_node(pg_store, scenario, model), single, "shared PostgreSQL")
    with LocalNats.start(3, root=tmp_path / "nats") as nats:
        for n_workers in (1, 2, 4):
            await truncate_all(pg_store)
            got = await run_partitioned(pg_store, scenario, model, nats.urls, n_workers)
            same(got, single, f"partitioned, {n_workers} workers")
