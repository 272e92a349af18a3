"""Reads a worker's process-wide caches make while a partition's session is open, on
that session's own connection.

A partition's :meth:`~server.cluster.partition_store.PartitionStore.session` holds one
pooled connection for a run of batches. The promoted models
(:class:`server.models.ModelCache`, one per process, shared by every partition's task)
may look a tenant's models up again in the middle of a batch; on a pool of its own that
look-up would wait for a second connection, and a pool whose connections all hold
sessions waiting for one more deadlocks. So the session publishes its connection in a
context variable — each partition runs in its own task, and a task sees its own value —
and :class:`SessionModelStore` reads there when one is set, from the pool otherwise
(the training loop, a look-up between sessions).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

import asyncpg

from server.store import PostgresStore, postgres_models
from server.store.base import TenantRecord
from server.store.errors import StoreUnavailableError
from server.store.roles.models import (
    ModelKind,
    ModelRecord,
    TrainingCursor,
    TrainingEvent,
    TrainingSignal,
)

_R = TypeVar("_R")
_SESSION: ContextVar[asyncpg.Connection | None] = ContextVar("geopush_session", default=None)


@contextlib.contextmanager
def reading_on(conn: asyncpg.Connection) -> Iterator[None]:
    """Within the block, this task's session reads go to ``conn``."""
    token = _SESSION.set(conn)
    try:
        yield
    finally:
        _SESSION.reset(token)


def session_connection() -> asyncpg.Connection | None:
    """The connection of the session this task holds, if any."""
    return _SESSION.get()


class SessionModelStore:
    """The model role of a :class:`PostgresStore` for a worker's ``ModelCache``: reads on
    the calling task's session connection when it holds one (see the module docstring)."""

    def __init__(self, store: PostgresStore) -> None:
        self._pg = store

    async def list_tenants(self) -> list[TenantRecord]:
        return await self._pg.list_tenants()

    async def ensure_tenant(self, tenant_id: str, *, name: str = "") -> TenantRecord:
        return await self._pg.ensure_tenant(tenant_id, name=name)

    async def add_model(self, tenant_id: str, kind: ModelKind, blob: bytes,
                        evaluation: dict[str, Any], *, promote: bool) -> ModelRecord:
        return await self._pg.add_model(tenant_id, kind, blob, evaluation, promote=promote)

    async def list_models(self, tenant_id: str,
                          kind: ModelKind | None = None) -> list[ModelRecord]:
        conn = session_connection()
        if conn is None:
            return await self._pg.list_models(tenant_id, kind)
        return await _translated(postgres_models.listing(conn, tenant_id, kind))

    async def promoted_model(self, tenant_id: str, kind: ModelKind) -> ModelRecord | None:
        conn = session_connection()
        if conn is None:
            return await self._pg.promoted_model(tenant_id, kind)
        return await _translated(postgres_models.promoted(conn, tenant_id, kind))

    async def training_events(self, tenant_id: str, *, after: TrainingCursor | None,
                              limit: int) -> list[tuple[TrainingCursor, TrainingEvent]]:
        conn = session_connection()
        if conn is None:
            return await self._pg.training_events(tenant_id, after=after, limit=limit)
        return await _translated(postgres_models.training_page(conn, tenant_id, after, limit))

    async def training_visits(self, tenant_id: str, *, after: TrainingCursor | None,
                              limit: int) -> list[tuple[TrainingCursor, TrainingSignal]]:
        conn = session_connection()
        if conn is None:
            return await self._pg.training_visits(tenant_id, after=after, limit=limit)
        return await _translated(postgres_models.visits_page(conn, tenant_id, after, limit))

    async def training_feedback(self, tenant_id: str, *, after: TrainingCursor | None,
                                limit: int) -> list[tuple[TrainingCursor, TrainingSignal]]:
        conn = session_connection()
        if conn is None:
            return await self._pg.training_feedback(tenant_id, after=after, limit=limit)
        return await _translated(postgres_models.feedback_page(conn, tenant_id, after, limit))


async def _translated(read: Awaitable[_R]) -> _R:
    """Await ``read``; backend errors leave as ``StoreUnavailableError``, as the store's."""
    try:
        return await read
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        raise StoreUnavailableError(f"PostgreSQL: {exc}") from exc
