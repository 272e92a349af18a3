"""The PostgreSQL store's models (``server.store.roles.models``): table ``models``
(migration 0014) and the bulk read of ``behaviour_events`` for training."""

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


def _record(row: asyncpg.Record, blob: bytes = b"") -> ModelRecord:
    evaluation = row["evaluation"]
    if isinstance(evaluation, str):
        evaluation = orjson.loads(evaluation)
    return ModelRecord(row["tenant_id"], row["kind"], row["version"], row["created_at"],
                       evaluation, row["promoted"], blob)
