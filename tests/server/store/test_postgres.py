"""What only PostgreSQL has: migrations, readiness, the erasure seen from SQL itself."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
from pydantic import ValidationError

from server.store import PostgresStore, Role, hash_key
from server.store.migrate import migrate, pending, quote_ident, shipped_migrations
from tests.server.conftest import ManualClock, drop_schema, open_clocked
from tests.server.store.builders import FORUM, T0, campaign, presence, profile, venue
from tests.server.store.test_contract import _everything_about
from triggers.decisions import Campaign, CampaignStatus
from triggers.decisions.best_time import choose_time
from triggers.decisions.models import Contacts, Device

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.needs_postgres]


@pytest.fixture
async def fresh_schema(database_url: str) -> AsyncIterator[str]:
    schema = f"geopush_fresh_{uuid.uuid4().hex[:10]}"
    yield schema
    await drop_schema(database_url, schema)


async def test_migrations_apply_once_then_are_a_no_op(database_url: str, fresh_schema: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        assert await pending(conn, fresh_schema) == [m.version for m in shipped_migrations()]
        assert await migrate(conn, fresh_schema) == [m.version for m in shipped_migrations()]
        assert await migrate(conn, fresh_schema) == []
        assert await pending(conn, fresh_schema) == []
    finally:
        await conn.close()


async def test_concurrent_start_ups_migrate_exactly_once(
    database_url: str, fresh_schema: str
) -> None:
    conns = [await asyncpg.connect(database_url) for _ in range(3)]
    try:
        applied = await asyncio.gather(*(migrate(c, fresh_schema) for c in conns))
        rows = await conns[0].fetch(
            f"SELECT version FROM {quote_ident(fresh_schema)}.schema_migrations ORDER BY 1")
    finally:
        for conn in conns:
            await conn.close()
    shipped = [m.version for m in shipped_migrations()]
    assert sorted(applied, key=len) == [[], [], shipped]
    assert [r["version"] for r in rows] == shipped


async def test_not_ready_until_migrations_are_applied(database_url: str, fresh_schema: str) -> None:
    store = await PostgresStore.open(database_url, schema=fresh_schema, apply_migrations=False)
    try:
        readiness = await store.ready()
        assert not readiness.ok and "migrations not applied" in readiness.detail
        async with store._pool.acquire() as conn:
            await migrate(conn, fresh_schema)
        assert (await store.ready()).ok
    finally:
        await store.close()


async def test_erase_user_leaves_no_row_of_the_user_in_any_table(pg_store: PostgresStore) -> None:
    tenant = "acme"
    await pg_store.ensure_tenant(tenant)
    for user_id in ("u1", "u2"):
        await _everything_about(pg_store, tenant, user_id)
        await pg_store.write_stream_presence("node-a", [(tenant, user_id)], (), ttl_s=60)
    await pg_store.erase_user(tenant, "u1")
    async with pg_store._pool.acquire() as conn:
        tables = [r[0] for r in await conn.fetch(
            "SELECT table_name FROM information_schema.columns"
            " WHERE table_schema = $1 AND column_name = 'user_id' ORDER BY 1", pg_store.schema)]
        left = {t: await conn.fetchval(
            f"SELECT count(*) FROM {quote_ident(t)} WHERE user_id = 'u1'") for t in tables}
        kept = {t: await conn.fetchval(
            f"SELECT count(*) FROM {quote_ident(t)} WHERE user_id = 'u2'") for t in tables}
    assert set(tables) >= {"profiles", "pings", "presence", "events", "decisions", "ledger",
                           "user_streaks", "deliveries"}
    assert left == dict.fromkeys(tables, 0)
    assert all(n > 0 for n in kept.values()), kept


async def test_every_time_the_store_stamps_is_the_injected_clocks(
    pg_store: PostgresStore, database_url: str
) -> None:
    clock = ManualClock(T0)
    store = await open_clocked(pg_store, database_url, clock)
    phone = Contacts(devices=(Device(platform="fcm", token="dead"),))
    steps: list[Callable[[], Awaitable[object]]] = [
        lambda: store.ensure_tenant("acme"),
        lambda: store.create_key("acme", key_id="k1", key_hash=hash_key("a"), role=Role.SDK),
        lambda: store.put_venues("acme", [venue(FORUM)]),
        lambda: store.create_campaign("acme", campaign("c1")),
        lambda: store.put_campaign("acme", campaign("c2")),
        lambda: store.set_campaign_status("acme", "c2", CampaignStatus.PAUSED),
        lambda: store.put_profile("acme", profile("u1")),
        lambda: store.put_profile("acme", profile("u2").model_copy(update={"contacts": phone})),
        lambda: store.patch_profile("acme", "u1", {"tags": ["commuter"]}),
        lambda: store.remove_contact("acme", "u2", "fcm", "dead"),
    ]
    try:
        for i, step in enumerate(steps):
            clock.now = T0 + i
            await step()
        clock.now = T0 + len(steps)
        async with store.batch("acme", ["u1"]) as tx:
            await tx.save_state(presence("u1"))
    finally:
        await store.close()
    async with pg_store._pool.acquire() as conn:
        stamped = {r[0]: r[1] - T0 for r in await conn.fetch(
            "SELECT 'tenant', created_at FROM tenants UNION ALL"
            " SELECT 'key', created_at FROM api_keys UNION ALL"
            " SELECT 'venue', updated_at FROM venues UNION ALL"
            " SELECT 'campaign ' || campaign_id, updated_at FROM campaigns UNION ALL"
            " SELECT 'profile ' || user_id, updated_at FROM profiles UNION ALL"
            " SELECT 'presence', updated_at FROM presence")}
    assert stamped == {"tenant": 0, "key": 1, "venue": 2, "campaign c1": 3, "campaign c2": 5,
                       "profile u1": 8, "profile u2": 9, "presence": 10}


async def test_api_key_secrets_never_reach_the_database(pg_store: PostgresStore) -> None:
    await pg_store.ensure_tenant("acme")
    secret = "gp_secret_" + uuid.uuid4().hex
    await pg_store.create_key("acme", key_id="k1", key_hash=hash_key(secret), role=Role.ADMIN)
    async with pg_store._pool.acquire() as conn:
        dump = await conn.fetchval("SELECT string_agg(t::text, ' ') FROM api_keys t")
    assert secret not in dump and hash_key(secret) in dump


async def test_batches_locking_shared_users_in_any_order_never_deadlock(
    pg_store: PostgresStore,
) -> None:
    await pg_store.ensure_tenant("acme")
    users = [f"u{i}" for i in range(20)]

    async def one(order: list[str]) -> None:
        async with pg_store.batch("acme", order):
            # Holding the locks a while is the point: the batches must overlap.
            await asyncio.sleep(0.01)

    orders = [users, users[::-1], users[5:] + users[:5], users[::2] + users[1::2]]
    await asyncio.wait_for(asyncio.gather(*(one(o) for o in orders * 2)), timeout=20)


# --------------------------------------------------------------------------- rate buckets


async def test_rate_tokens_are_granted_once_to_concurrent_takers(pg_store: PostgresStore,
                                                                 database_url: str) -> None:
    """Twenty takers on five pools (as five nodes) race for a bucket of 5: 5 granted."""
    pools = [await PostgresStore.open(database_url, schema=pg_store.schema, min_size=1,
                                      max_size=4, apply_migrations=False) for _ in range(5)]
    try:
        grants = await asyncio.gather(*(
            pools[i % 5].take_rate_tokens("k-race", per_s=0.001, burst=5.0, want=1)
            for i in range(20)))
    finally:
        for pool in pools:
            await pool.close()
    assert sum(granted for granted, _ in grants) == 5
    assert min(left for _, left in grants) == pytest.approx(0.0, abs=0.01)


async def test_rate_tokens_start_full_refill_at_the_rate_and_never_pass_the_burst(
    pg_store: PostgresStore,
) -> None:
    assert await pg_store.take_rate_tokens("k-refill", per_s=100.0, burst=3.0, want=2) == (2, 1.0)
    granted, _ = await pg_store.take_rate_tokens("k-refill", per_s=100.0, burst=3.0, want=5)
    assert granted in (1, 2, 3)  # 1 left + 100/s for the few ms since: at most the burst
    # Elapsed time is what refills the bucket: this pause is the input, not a wait.
    await asyncio.sleep(0.2)  # 20 tokens' worth of time
    assert (await pg_store.take_rate_tokens("k-refill", per_s=100.0, burst=3.0, want=10))[0] == 3


async def test_an_empty_bucket_grants_nothing_and_says_how_short_it_is(
    pg_store: PostgresStore,
) -> None:
    await pg_store.take_rate_tokens("k-empty", per_s=0.001, burst=1.0, want=1)
    granted, left = await pg_store.take_rate_tokens("k-empty", per_s=0.001, burst=1.0, want=1)
    assert granted == 0 and 0.0 <= left < 0.01


async def test_idle_rate_buckets_are_pruned_and_busy_ones_kept(pg_store: PostgresStore) -> None:
    await pg_store.take_rate_tokens("k-idle", per_s=1.0, burst=5.0, want=1)
    await pg_store.take_rate_tokens("k-busy", per_s=1.0, burst=5.0, want=1)
    async with pg_store._pool.acquire() as conn:
        await conn.execute("UPDATE rate_buckets SET updated_at = updated_at - 7200"
                           " WHERE key_id = 'k-idle'")
    assert await pg_store.prune_rate_buckets(idle_for_s=3600) == 1
    async with pg_store._pool.acquire() as conn:
        keys = await conn.fetch("SELECT key_id FROM rate_buckets ORDER BY key_id")
    assert [r["key_id"] for r in keys] == ["k-busy"]


async def test_a_campaign_stored_before_a_rule_was_added_still_loads_with_the_others(
        pg_store: PostgresStore) -> None:
    # Rules added later (an empty category, no channel, a best_time window without a
    # whole hour) are the API's: a row written before them still loads, and the
    # tenant's other campaigns with it; the scheduler sends it at its fallback hour.
    tenant = "acme"
    await pg_store.ensure_tenant(tenant)
    scheduled = {"scheduled": {"times": ["10:00"],
                               "best_time": {"fallback": "10:00", "window": "09:00-18:00"}}}
    older = Campaign.model_validate({**campaign("older").model_dump(mode="json"),
                                     "trigger": scheduled, "categories": ["toys"]})
    for made in (older, campaign("other")):
        await pg_store.create_campaign(tenant, made)
    body = older.model_dump(mode="json")
    body["categories"], body["channels"] = ["toys", ""], []
    body["trigger"]["scheduled"]["best_time"]["window"] = "09:15-09:45"
    async with pg_store._pool.acquire() as conn:
        await conn.execute("UPDATE campaigns SET body = $3 WHERE tenant_id = $1"
                           " AND campaign_id = $2", tenant, "older", body)
    with pytest.raises(ValidationError):
        Campaign.model_validate(body)  # what the API would now refuse
    loaded = {c.id: c for c in await pg_store.list_campaigns(tenant)}
    assert set(loaded) == {"older", "other"}
    stored = loaded["older"]
    assert (stored.categories, stored.channels) == (("toys", ""), ())
    assert await pg_store.get_campaign(tenant, "older") == stored
    best = stored.trigger.scheduled.best_time if stored.trigger.scheduled else None
    assert best is not None
    assert choose_time(best, [1.0] * 24).local_time == "10:00"
    paused = await pg_store.set_campaign_status(tenant, "older", CampaignStatus.PAUSED)
    assert paused is not None and paused.status == CampaignStatus.PAUSED
