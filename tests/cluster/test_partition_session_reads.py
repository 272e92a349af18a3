"""What a partition's batch reads besides presence goes on its session's connection: a
worker whose pool has one connection, held by the session, still reads the users'
behaviour, features and tag rules and loads a newly promoted model inside it.

A read that asked the pool for a second connection would wait for ever (the session
holds the only one); ``asyncio.wait_for`` turns that into a failure instead of a hang.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from server.cluster.checkpoints import Checkpoint
from server.cluster.partition_store import PartitionStore
from server.cluster.session_reads import SessionModelStore
from server.models import ModelCache
from server.store import PostgresStore
from server.store.roles.behaviour import BehaviourRecord
from tests.cluster.test_identity_location_inputs import behaviour, interest_model
from tests.decisions.builders import at
from tests.server.conftest import TENANT, truncate_all
from triggers.behaviour.rules import DEFAULT_TAG_RULES

pytestmark = [pytest.mark.needs_postgres, pytest.mark.asyncio(loop_scope="session")]

SATURDAY = at("2026-11-28 10:00", "Europe/Helsinki")
DEADLOCK_GUARD_S = 30.0


@pytest.fixture
async def one_connection(database_url: str, pg_schema: str) -> AsyncIterator[PostgresStore]:
    store = await PostgresStore.open(database_url, schema=pg_schema, min_size=1, max_size=1)
    await truncate_all(store)
    yield store
    await store.close()


async def test_behaviour_and_a_promoted_model_are_read_inside_a_session_of_the_only_connection(
    one_connection: PostgresStore,
) -> None:
    store = one_connection
    await store.ensure_tenant(TENANT)
    await store.ingest_behaviour(TENANT, behaviour(SATURDAY), now=SATURDAY)
    await store.put_tag_rules(TENANT, DEFAULT_TAG_RULES)
    fitted = await asyncio.to_thread(interest_model, SATURDAY)
    await store.add_model(TENANT, "interests", fitted.blob, fitted.evaluation, promote=True)
    partition = PartitionStore(store, Checkpoint(0))
    models = ModelCache(SessionModelStore(store))

    async def inside() -> tuple[list[BehaviourRecord], set[str], bool, float]:
        async with partition.session():
            viewed = await partition.list_behaviour(TENANT, "aino", since=SATURDAY - 7 * 86_400)
            features = await partition.get_features_of(TENANT, ["aino", "mikko"])
            rules = await partition.get_tag_rules(TENANT)
            view = await models.view(TENANT, SATURDAY)
            baby = view.facts("aino", SATURDAY).interest("baby") or 0.0
        return viewed, set(features), rules == DEFAULT_TAG_RULES, baby

    viewed, featured, rules_read, baby = await asyncio.wait_for(inside(), DEADLOCK_GUARD_S)
    assert [r.event.item.id for r in viewed if r.event.item] == ["stroller-9"]
    assert featured == {"aino", "mikko"}
    assert rules_read
    assert baby >= 0.5
