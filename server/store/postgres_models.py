"""The PostgreSQL store's models (``server.store.roles.models``): table ``models``
(migration 0014) and the bulk reads for training: ``behaviour_events``, the ENTER
``events`` of tagged venues, and the opened or clicked ``deliveries`` (migration 0015)."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

from server.store.errors import NotFoundError
from server.store.roles.models import (
    ModelKind,
    ModelRecord,
    TrainingCursor,
    TrainingEvent,
    TrainingSignal,
)

_LISTED = "tenant_id, kind, version, created_at, evaluation, promoted"


async def add(conn: asyncpg.Connection, tenant_id: str, kind: ModelKind, blob: bytes,
              evaluation: dict[str, Any], *, promote: bool, now: float) -> ModelRecord:
    """Insert the next version under a per-(tenant, kind) transaction lock; with
    ``promote`` the previous promoted row is demoted first (one promoted row)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))",
                           f"models:{tenant_id}:{kind}")
        if promote:
            await conn.execute("UPDATE models SET promoted = false WHERE tenant_id = $1"
                               " AND kind = $2 AND promoted", tenant_id, kind)
        try:
            row = await conn.fetchrow(
                "INSERT INTO models (tenant_id, kind, version, created_at, blob, evaluation,"
                " promoted) SELECT $1, $2, COALESCE(MAX(version), 0) + 1, $3, $4, $5, $6"
                " FROM models WHERE tenant_id = $1 AND kind = $2 RETURNING " + _LISTED,
                tenant_id, kind, now, blob, orjson.dumps(evaluation).decode(), promote)
        except asyncpg.ForeignKeyViolationError as exc:
            raise NotFoundError(f"no tenant {tenant_id!r}") from exc
    return _record(row)


async def listing(conn: asyncpg.Connection, tenant_id: str,
                  kind: ModelKind | None) -> list[ModelRecord]:
    rows = await conn.fetch(
        f"SELECT {_LISTED} FROM models WHERE tenant_id = $1"
        " AND ($2::text IS NULL OR kind = $2) ORDER BY kind, version DESC", tenant_id, kind)
    return [_record(r) for r in rows]


async def promoted(conn: asyncpg.Connection, tenant_id: str,
                   kind: ModelKind) -> ModelRecord | None:
    row = await conn.fetchrow(
        f"SELECT {_LISTED}, blob FROM models WHERE tenant_id = $1 AND kind = $2"
        " AND promoted", tenant_id, kind)
    return None if row is None else _record(row, bytes(row["blob"]))


async def training_page(conn: asyncpg.Connection, tenant_id: str,
                        after: TrainingCursor | None,
                        limit: int) -> list[tuple[TrainingCursor, TrainingEvent]]:
    ts, key = after if after is not None else (-1.0, "")
    rows = await conn.fetch(
        "SELECT event_key, user_id, ts, kind, category FROM behaviour_events"
        " WHERE tenant_id = $1 AND (ts > $2 OR (ts = $2 AND event_key COLLATE \"C\" > $3))"
        " ORDER BY ts, event_key COLLATE \"C\" LIMIT $4", tenant_id, ts, key, max(limit, 0))
    return [((r["ts"], r["event_key"]),
             TrainingEvent(r["user_id"], r["ts"], r["kind"], r["category"])) for r in rows]


async def visits_page(conn: asyncpg.Connection, tenant_id: str,
                      after: TrainingCursor | None,
                      limit: int) -> list[tuple[TrainingCursor, TrainingSignal]]:
    at, key = after if after is not None else (-1.0, "")
    rows = await conn.fetch(
        "SELECT e.event_key, e.user_id, e.at, v.tags FROM events e JOIN venues v"
        " ON v.tenant_id = e.tenant_id AND v.venue_id = e.venue_id"
        " WHERE e.tenant_id = $1 AND e.kind = 'enter' AND cardinality(v.tags) > 0"
        " AND (e.at > $2 OR (e.at = $2 AND e.event_key COLLATE \"C\" > $3))"
        " ORDER BY e.at, e.event_key COLLATE \"C\" LIMIT $4", tenant_id, at, key,
        max(limit, 0))
    return [((r["at"], r["event_key"]),
             TrainingSignal(r["user_id"], r["at"], "visit", tuple(r["tags"]))) for r in rows]


_FEEDBACK_KINDS = {"opened": "open", "clicked": "click"}
"""Feedback that teaches, and the engagement kind it is trained as. ``dismissed`` and
``ignored`` are left out: the interest model counts engagement and has no negative
input; ``converted`` comes after a click, which is counted."""


async def feedback_page(conn: asyncpg.Connection, tenant_id: str,
                        after: TrainingCursor | None,
                        limit: int) -> list[tuple[TrainingCursor, TrainingSignal]]:
    created, key = after if after is not None else (-1.0, "")
    rows = await conn.fetch(
        "SELECT d.created_at, d.delivery_id || '/' || f.kind AS key, d.user_id, f.kind,"
        " coalesce((d.feedback_times ->> f.kind)::float8, d.created_at) AS ts,"
        " ARRAY(SELECT jsonb_array_elements_text(coalesce(c.body -> 'categories', '[]')))"
        "   AS categories"
        " FROM deliveries d CROSS JOIN LATERAL unnest(d.feedback) AS f(kind)"
        " LEFT JOIN campaigns c ON c.tenant_id = d.tenant_id AND c.campaign_id = d.campaign_id"
        " WHERE d.tenant_id = $1 AND d.feedback && ARRAY['opened', 'clicked']::text[]"
        " AND f.kind IN ('opened', 'clicked') AND d.created_at >= $2"
        " AND (d.created_at > $2 OR (d.delivery_id || '/' || f.kind) COLLATE \"C\" > $3)"
        " ORDER BY d.created_at, (d.delivery_id || '/' || f.kind) COLLATE \"C\" LIMIT $4",
        tenant_id, created, key, max(limit, 0))
    return [((r["created_at"], r["key"]),
             TrainingSignal(r["user_id"], r["ts"], _FEEDBACK_KINDS[r["kind"]],
                            tuple(r["categories"]))) for r in rows]


def _record(row: asyncpg.Record, blob: bytes = b"") -> ModelRecord:
    evaluation = row["evaluation"]
    if isinstance(evaluation, str):
        evaluation = orjson.loads(evaluation)
    return ModelRecord(row["tenant_id"], row["kind"], row["version"], row["created_at"],
                       evaluation, row["promoted"], blob)
