"""Presence as typed PostgreSQL columns (migration 0003): old records converted, exact
round trips, NULL for the users with nothing open, and the lock-then-read statement."""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import numpy as np
import pytest

from server.store import PostgresStore
from server.store.migrate import migrate, quote_ident
from tests.server.conftest import drop_schema
from tests.server.store.builders import T0, presence, presences
from triggers.presence_state import PresenceState
from triggers.presence_subset import PresenceColumns, from_columns, to_columns

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.needs_postgres]

TENANT = "acme"
INF = math.inf


@pytest.fixture
async def schema_at_v2(database_url: str) -> AsyncIterator[str]:
    """A fresh schema migrated up to 0002 (presence as one JSONB record per user)."""
    schema = f"geopush_v2_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn, schema, up_to=2)
        await conn.execute(
            f"INSERT INTO {quote_ident(schema)}.tenants (tenant_id, created_at) VALUES ($1, $2)",
            TENANT, T0)
    finally:
        await conn.close()
    yield schema
    await drop_schema(database_url, schema)


def _old_record(user_id: str, last_ts: Any, anchor: tuple[Any, Any, Any], streak: int, *,
                visits: list[list[Any]], candidates: list[list[Any]]) -> dict[str, Any]:
    """A presence record as 0002 stored it (triggers/presence_records.py, version 1):
    non-finite floats as the strings 'inf' / '-inf' / 'nan'."""
    return {"version": 1, "user_id": user_id, "last_ts": last_ts, "anchor_ts": anchor[0],
            "anchor_lat": anchor[1], "anchor_lng": anchor[2], "reject_streak": streak,
            "visits": visits, "candidates": candidates}


FORUM_VISIT = ["forum", "ana-v1", T0 - 600, T0 - 5, T0 - 300, 300, 0, "high", T0 + 295]
KAMPPI_VISIT = ["kamppi", "ana-v2", T0 - 60, T0 - 5, T0 - 60, 0, 1, "medium", T0 + 240]

OLD_ROWS = [  # (record, next_due_s) as the pipeline of 0002 saved them
    (_old_record("ana", T0, (T0 - 600, 60.1690, 24.9402), 0,
                 visits=[FORUM_VISIT, KAMPPI_VISIT], candidates=[["stockmann", T0 - 5, 2]]),
     T0 + 240),
    (_old_record("bo", T0 - 30, (T0 - 30, 60.1, 24.9), 0,
                 visits=[], candidates=[["forum", T0 - 30, 1]]), None),
    (_old_record("cy", T0 - 1.5, (T0 - 1.5, 60.17, 24.94), 0, visits=[], candidates=[]), None),
    # Every ping of this user was rejected: nothing accepted yet.
    (_old_record("dee", "-inf", ("-inf", "nan", "nan"), 7, visits=[], candidates=[]), None),
    (_old_record("élodie 東京", T0, (T0, -33.8688, 151.2093), 255, visits=[], candidates=[]),
     None),
]


def _expected() -> PresenceState:
    nan = math.nan
    return from_columns(PresenceColumns(
        user_ids=["ana", "bo", "cy", "dee", "élodie 東京"],
        last_ts=np.array([T0, T0 - 30, T0 - 1.5, -INF, T0]),
        anchor_ts=np.array([T0 - 600, T0 - 30, T0 - 1.5, -INF, T0]),
        anchor_lat=np.array([60.1690, 60.1, 60.17, nan, -33.8688]),
        anchor_lng=np.array([24.9402, 24.9, 24.94, nan, 151.2093]),
        reject_streak=np.array([0, 0, 0, 7, 255], dtype=np.int16),
        open=[[[FORUM_VISIT, KAMPPI_VISIT], [["stockmann", T0 - 5, 2]]],
              [[], [["forum", T0 - 30, 1]]], None, None, None],
        next_due_s=np.full(5, nan),
    ))


def _exact(state: PresenceState) -> dict[str, tuple[str, ...]]:
    """Each user's presence, floats by repr (so NaN equals NaN and -0.0 is not 0.0)."""
    c = to_columns(state)
    return {u: (repr(float(c.last_ts[i])), repr(float(c.anchor_ts[i])),
                repr(float(c.anchor_lat[i])), repr(float(c.anchor_lng[i])),
                repr(int(c.reject_streak[i])), repr(c.open[i]), repr(float(c.next_due_s[i])))
            for i, u in enumerate(c.user_ids)}


async def test_migration_0003_turns_old_records_into_the_same_state(
    database_url: str, schema_at_v2: str
) -> None:
    conn = await asyncpg.connect(database_url,
                                 server_settings={"search_path": schema_at_v2})
    try:
        await conn.executemany(
            "INSERT INTO presence (tenant_id, user_id, record, next_due_s, updated_at)"
            " VALUES ($1, $2, $3::jsonb, $4, $5)",
            [(TENANT, r["user_id"], json.dumps(r), due, T0) for r, due in OLD_ROWS])
        # The 0002 code never stored a (user, ts) twice; had it, 0003 keeps one.
        await conn.executemany(
            "INSERT INTO pings (tenant_id, user_id, ts, lat, lng, mock, received_at)"
            " VALUES ($1, $2, $3, 60.17, 24.94, false, $3)",
            [(TENANT, "ana", T0), (TENANT, "ana", T0), (TENANT, "ana", T0 + 10)])
        assert await migrate(conn, schema_at_v2, up_to=3) == [3]
        columns = {r[0] for r in await conn.fetch(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = $1 AND table_name = 'presence'", schema_at_v2)}
        nulls = await conn.fetch("SELECT user_id FROM presence WHERE open IS NULL ORDER BY 1")
        pings = await conn.fetchval("SELECT count(*) FROM pings")
    finally:
        await conn.close()
    assert "record" not in columns
    assert [r[0] for r in nulls] == ["cy", "dee", "élodie 東京"]
    assert pings == 2

    store = await PostgresStore.open(database_url, schema=schema_at_v2, max_size=2)
    try:
        async with store.batch(TENANT, ["ana", "bo", "cy", "dee", "élodie 東京", "new"]) as tx:
            loaded = await tx.load_state()
        assert await store.due_users(TENANT, T0 + 1000, 10) == ["ana"]
    finally:
        await store.close()
    assert _exact(loaded) == _exact(_expected())


async def test_migration_0003_refuses_records_of_an_unknown_version(
    database_url: str, schema_at_v2: str
) -> None:
    conn = await asyncpg.connect(database_url,
                                 server_settings={"search_path": schema_at_v2})
    try:
        await conn.execute(
            "INSERT INTO presence (tenant_id, user_id, record, next_due_s, updated_at)"
            " VALUES ($1, 'u1', '{\"version\": 2}', NULL, $2)", TENANT, T0)
        with pytest.raises(asyncpg.RaiseError, match="version other than 1"):
            await migrate(conn, schema_at_v2)
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == 2
    finally:
        await conn.close()


async def test_non_finite_floats_survive_a_save_and_a_load(pg_store: PostgresStore) -> None:
    await pg_store.ensure_tenant(TENANT)
    state = from_columns(PresenceColumns(
        ["u1", "u2"], np.array([-INF, T0]), np.array([-INF, -0.0]),
        np.array([math.nan, 60.17]), np.array([math.nan, 24.94]),
        np.array([3, 0], np.int16), [None, None], np.full(2, math.nan)))
    expected = _exact(state)
    async with pg_store.batch(TENANT, ["u1", "u2"]) as tx:
        await tx.save_state(state)
    async with pg_store.batch(TENANT, ["u1", "u2"]) as tx:
        assert _exact(await tx.load_state()) == expected


async def test_users_with_nothing_open_store_null_open_and_no_due_time(
    pg_store: PostgresStore,
) -> None:
    await pg_store.ensure_tenant(TENANT)
    async with pg_store.batch(TENANT, ["a", "b"]) as tx:
        await tx.save_state(presences({"a": T0 + 60, "b": None}))
    async with pg_store._pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT user_id, open IS NULL AS closed, next_due_s FROM presence ORDER BY 1")
    assert [tuple(r) for r in rows] == [("a", False, T0 + 60), ("b", True, None)]


async def test_a_load_after_a_save_in_the_same_batch_sees_the_save(
    pg_store: PostgresStore,
) -> None:
    await pg_store.ensure_tenant(TENANT)
    async with pg_store.batch(TENANT, ["u1"]) as tx:
        assert to_columns(await tx.load_state()).user_ids == []
        await tx.save_state(presence("u1", T0 + 5))
        assert _exact(await tx.load_state()) == _exact(presence("u1", T0 + 5))


async def test_skip_locked_loads_only_the_users_it_claimed(pg_store: PostgresStore) -> None:
    await pg_store.ensure_tenant(TENANT)
    async with pg_store.batch(TENANT, ["u1", "u2"]) as tx:
        await tx.save_state(presences({"u1": T0 + 1, "u2": T0 + 2}))
    holding, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with pg_store.batch(TENANT, ["u1"]):
            holding.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await holding.wait()
    try:
        async with pg_store.batch(TENANT, ["u1", "u2"], skip_locked=True) as tx:
            assert tx.user_ids == ("u2",)
            assert to_columns(await tx.load_state()).user_ids == ["u2"]
    finally:
        release.set()
        await holder
