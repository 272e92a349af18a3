"""The PostgreSQL store's behaviour statements (migration 0009), on a connection the
store's methods hand in; :class:`~server.store.postgres.PostgresStore` wraps them in
its error translation.

Ingest is one transaction of three round trips (plus the triggers' when a behaviour
campaign is active): the users' batch locks (the advisory locks of ``IngestStore.batch``
and ``erase_user``, in ascending key order, so it cannot deadlock with them nor write a
user back after an erasure) with the tenant check and the users' features, read after
the locks (``geopush_lock_load_features``, migration 0009); the keyed insert (``ON
CONFLICT DO NOTHING``: what two processes race for is stored once, and only the winner
folds it); the features' upsert (text, migration 0016). The Python work of each step
runs while PostgreSQL answers the one before (see :func:`ingest`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg
import orjson

from server.store.errors import NotFoundError
from server.store.roles.behaviour import BehaviourRecord
from triggers.behaviour.events import BehaviourEvent
from triggers.behaviour.features import EMPTY, UserFeatures, fold
from triggers.behaviour.rules import TagRules
from triggers.behaviour.triggers import (
    PendingTrigger,
    cancellations,
    cancelled_decision,
    triggered,
)
from triggers.decisions.models import Campaign

_Answer = TypeVar("_Answer")
_Done = TypeVar("_Done")

_LOCK_LOAD = "SELECT * FROM geopush_lock_load_features($1, $2::text[])"
_INSERT = (
    "INSERT INTO behaviour_events (tenant_id, event_key, user_id, ts, kind, item_id,"
    " category, body, received_at)"
    " SELECT $1, k, u, ts, kind, item, cat, body::jsonb, rec"
    " FROM unnest($2::text[], $3::text[], $4::float8[], $5::text[], $6::text[], $7::text[],"
    " $8::text[], $9::float8[]) WITH ORDINALITY AS x(k, u, ts, kind, item, cat, body, rec, n)"
    " ORDER BY n"
    " ON CONFLICT (tenant_id, event_key) DO NOTHING RETURNING event_key")
_UPSERT = ("INSERT INTO behaviour_features (tenant_id, user_id, body, updated_at)"
           " SELECT $1, u, b, $4 FROM unnest($2::text[], $3::text[]) AS x(u, b)"
           " ON CONFLICT (tenant_id, user_id) DO UPDATE"
           " SET body = EXCLUDED.body, updated_at = EXCLUDED.updated_at")


async def ingest(conn: asyncpg.Connection, tenant_id: str, records: Sequence[BehaviourRecord],
                 now: float, campaigns: Sequence[Campaign] = ()) -> list[BehaviourRecord]:
    """See ``BehaviourStore.ingest_behaviour``; ``now`` stamps the features' update.

    The Python work overlaps PostgreSQL's: the rows are built while the locks are taken,
    and the features folded while the events are inserted, on the guess that every key
    is new (the usual case; when some were stored before, the new ones are folded
    again)."""
    users = sorted({r.event.user_id for r in records})
    async with conn.transaction():
        rows, event_rows = await _meanwhile(conn.fetch(_LOCK_LOAD, tenant_id, users),
                                            lambda: _event_rows(records))
        if not rows[0]["tenant_known"]:
            raise NotFoundError(f"no tenant {tenant_id!r}")
        # The features are text (migration 0016), read and written with orjson.
        current = {r["user_id"]: r["body"] for r in rows[1:]}
        if not records:
            return []
        firsts = _first_of_each_key(records)
        keys, guessed = await _meanwhile(conn.fetch(_INSERT, tenant_id, *event_rows),
                                         lambda: _folded(firsts, current))
        stored = {k[0] for k in keys}
        new = [r for r in firsts if r.event_key in stored]
        if new:
            folded = guessed if len(new) == len(firsts) else _folded(new, current)
            await conn.execute(_UPSERT, tenant_id, *folded, now)
            await _triggers(conn, tenant_id, new, campaigns, now)
    return new


async def _meanwhile(query: Awaitable[_Answer], work: Callable[[], _Done]) -> tuple[_Answer, _Done]:
    """``work()`` (Python, on the CPU) while PostgreSQL runs ``query`` (sent first), and
    the query's answer."""
    sent = asyncio.ensure_future(query)
    await asyncio.sleep(0)  # the query goes out; its task then waits for the answer
    try:
        done = work()
    except BaseException:
        await asyncio.gather(sent, return_exceptions=True)
        raise
    return await sent, done


def _event_rows(records: Sequence[BehaviourRecord]) -> tuple[list[Any], ...]:
    """The columns of :data:`_INSERT` after the tenant."""
    events = [r.event for r in records]
    items = [e.item for e in events]
    return ([r.event_key for r in records], [e.user_id for e in events],
            [e.ts for e in events], [e.kind for e in events],
            [i.id if i else None for i in items], [i.category if i else None for i in items],
            [e.model_dump_json() for e in events], [r.received_at for r in records])


def _first_of_each_key(records: Sequence[BehaviourRecord]) -> list[BehaviourRecord]:
    """The records in order, a key given twice kept at its first (what the insert keeps)."""
    seen: set[str] = set()
    firsts = []
    for record in records:
        if record.event_key not in seen:
            seen.add(record.event_key)
            firsts.append(record)
    return firsts


def _folded(new: Sequence[BehaviourRecord],
            current: dict[str, str]) -> tuple[list[str], list[str]]:
    """The users of ``new`` and their features with ``new`` folded in, as text
    (``current``: the stored text)."""
    by_user: dict[str, list[BehaviourEvent]] = {}
    for record in new:
        by_user.setdefault(record.event.user_id, []).append(record.event)
    users = list(by_user)
    bodies = [orjson.dumps(fold(
        UserFeatures.from_json(orjson.loads(current[u])) if u in current else EMPTY,
        by_user[u]).to_json()).decode() for u in users]
    return users, bodies


_START = ("INSERT INTO behaviour_triggers (tenant_id, key, user_id, campaign_id, due_at, body)"
          " SELECT $1, k, u, c, d, b::jsonb FROM unnest($2::text[], $3::text[], $4::text[],"
          " $5::float8[], $6::text[]) AS x(k, u, c, d, b)"
          " ON CONFLICT (tenant_id, key) DO NOTHING")
_OPEN = ("SELECT body::text FROM behaviour_triggers"
         " WHERE tenant_id = $1 AND user_id = ANY($2::text[]) AND state = 'pending'")
_CANCEL = ("WITH logged AS ("
           " INSERT INTO decisions (tenant_id, decision_key, user_id, decided_at, at, body)"
           " SELECT $1, k, u, $5, a, b::jsonb FROM unnest($2::text[], $3::text[],"
           " $4::float8[], $6::text[]) AS x(k, u, a, b)"
           " ON CONFLICT DO NOTHING RETURNING decision_key)"
           " UPDATE behaviour_triggers t SET state = 'cancelled' FROM logged"
           " WHERE t.tenant_id = $1 AND t.key = logged.decision_key AND t.state = 'pending'")


async def _triggers(conn: asyncpg.Connection, tenant_id: str, new: Sequence[BehaviourRecord],
                    campaigns: Sequence[Campaign], now: float) -> None:
    """Start the triggers the new events start, then cancel the open triggers they
    follow up (the new ones included), each with its decision: a trigger whose decision
    exists (it fired) keeps it and is not cancelled. Without an active behaviour
    campaign nothing is looked at (a trigger of a campaign paused since decides nothing:
    its campaign is no candidate)."""
    if not campaigns:
        return
    started = [p for r in new for p in triggered(campaigns, r.event_key, r.event)]
    if started:
        await conn.execute(_START, tenant_id, [p.key for p in started],
                           [p.user_id for p in started], [p.campaign_id for p in started],
                           [p.due_at for p in started],
                           [orjson.dumps(p.to_json()).decode() for p in started])
    users = sorted({r.event.user_id for r in new})
    rows = await conn.fetch(_OPEN, tenant_id, users)
    if not rows:
        return
    open_triggers = [PendingTrigger.from_json(orjson.loads(r[0])) for r in rows]
    found = cancellations(open_triggers, [r.event for r in new])
    if found:
        decisions = [cancelled_decision(p, e, now) for p, e in found]
        await conn.execute(_CANCEL, tenant_id, [p.key for p, _ in found],
                           [p.user_id for p, _ in found], [p.event_ts for p, _ in found], now,
                           [d.to_json() for d in decisions])


async def due(conn: asyncpg.Connection, tenant_id: str, now: float,
              limit: int) -> list[PendingTrigger]:
    rows = await conn.fetch(
        "SELECT body::text FROM behaviour_triggers WHERE tenant_id = $1 AND state = 'pending'"
        " AND due_at <= $2 ORDER BY due_at, key COLLATE \"C\" LIMIT $3", tenant_id, now, limit)
    return [PendingTrigger.from_json(orjson.loads(r[0])) for r in rows]


async def still_open(conn: asyncpg.Connection, tenant_id: str,
                     keys: Sequence[str]) -> list[PendingTrigger]:
    rows = await conn.fetch(
        "SELECT body::text FROM behaviour_triggers WHERE tenant_id = $1"
        " AND key = ANY($2::text[]) AND state = 'pending' ORDER BY due_at, key COLLATE \"C\"",
        tenant_id, list(keys))
    return [PendingTrigger.from_json(orjson.loads(r[0])) for r in rows]


async def fired(conn: asyncpg.Connection, tenant_id: str, keys: Sequence[str]) -> int:
    status = await conn.execute(
        "UPDATE behaviour_triggers SET state = 'fired' WHERE tenant_id = $1"
        " AND key = ANY($2::text[]) AND state = 'pending'", tenant_id, list(keys))
    return int(status.rsplit(" ", 1)[-1])


async def listing(conn: asyncpg.Connection, tenant_id: str, user_id: str, since: float | None,
                  limit: int) -> list[BehaviourRecord]:
    rows = await conn.fetch(
        "SELECT event_key, body, received_at FROM ("
        " SELECT event_key, body, received_at, ts FROM behaviour_events"
        " WHERE tenant_id = $1 AND user_id = $2 AND ($3::float8 IS NULL OR ts >= $3)"
        " ORDER BY ts DESC, event_key COLLATE \"C\" DESC LIMIT $4) AS last"
        " ORDER BY ts, event_key COLLATE \"C\"", tenant_id, user_id, since, max(limit, 0))
    return [BehaviourRecord(r["event_key"], BehaviourEvent.model_validate(r["body"]),
                            r["received_at"]) for r in rows]


async def features(conn: asyncpg.Connection, tenant_id: str,
                   user_id: str) -> UserFeatures | None:
    body = await conn.fetchval("SELECT body FROM behaviour_features"
                               " WHERE tenant_id = $1 AND user_id = $2", tenant_id, user_id)
    return None if body is None else UserFeatures.from_json(orjson.loads(body))


async def features_of(conn: asyncpg.Connection, tenant_id: str,
                      user_ids: Sequence[str]) -> dict[str, UserFeatures]:
    rows = await conn.fetch("SELECT user_id, body FROM behaviour_features"
                            " WHERE tenant_id = $1 AND user_id = ANY($2::text[])",
                            tenant_id, list(user_ids))
    return {r[0]: UserFeatures.from_json(orjson.loads(r[1])) for r in rows}


async def get_rules(conn: asyncpg.Connection, tenant_id: str) -> TagRules | None:
    body = await conn.fetchval("SELECT body FROM tag_rules WHERE tenant_id = $1", tenant_id)
    return None if body is None else TagRules.model_validate(body)


async def put_rules(conn: asyncpg.Connection, tenant_id: str, rules: TagRules,
                    now: float) -> None:
    try:
        await conn.execute(
            "INSERT INTO tag_rules (tenant_id, body, updated_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (tenant_id) DO UPDATE SET body = EXCLUDED.body,"
            " updated_at = EXCLUDED.updated_at", tenant_id, rules.model_dump(mode="json"), now)
    except asyncpg.ForeignKeyViolationError as exc:
        raise NotFoundError(f"no tenant {tenant_id!r}") from exc


async def prune(conn: asyncpg.Connection, tenant_id: str, before: float, limit: int) -> int:
    status = await conn.execute(
        "DELETE FROM behaviour_events WHERE ctid = ANY(ARRAY("
        " SELECT ctid FROM behaviour_events WHERE tenant_id = $1 AND received_at < $2"
        " LIMIT $3))", tenant_id, before, limit)
    return int(status.rsplit(" ", 1)[-1])
