"""The store a partition's worker runs the pipeline on: presence in memory, effects in
PostgreSQL, no per-user locks.

:class:`PartitionStore` is an :class:`~server.store.roles.IngestStore`, so the worker
calls :func:`server.pipeline.ingest` and :func:`server.pipeline.fire_timers` unchanged.
What differs from the PostgreSQL store's own batch:

- no advisory locks: the partition's lease makes this worker the only writer of its
  users (one task per partition, one message after another);
- presence comes from the partition's :class:`~server.cluster.checkpoints.Checkpoint`
  in memory (a private copy of the batch's users, as the embedded store does) and goes
  back there when the batch block ends cleanly; timers are due from that state;
- every batch of one :meth:`session` shares one PostgreSQL transaction: the worker
  processes a run of stream messages at the cost of one commit. Should that commit
  fail, the in-memory state is ahead of the database; the worker then throws the
  partition's state away and restores it from its checkpoint (see :mod:`.worker`);
- what location decisions read of behaviour (the users' recent events for ``also``
  conditions, their features and the tenant's tag rules for learned tags) is read on
  that transaction's connection, as are the promoted models a look-up mid-session
  loads (:mod:`.session_reads`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from server.cluster.checkpoints import Checkpoint
from server.cluster.session_reads import reading_on
from server.store import PostgresStore, postgres_behaviour
from server.store.base import (
    Catalog,
    DecisionRecord,
    DeliveryRecord,
    EventRecord,
    KeyedEntry,
    LedgerSnapshot,
    NewDelivery,
    PushFeedback,
    TenantRecord,
)
from server.store.errors import NotFoundError
from server.store.roles import BatchTx
from server.store.roles.behaviour import BehaviourRecord
from server.tenant_core import CoreBuildError, TenantCores
from triggers.behaviour.features import UserFeatures
from triggers.behaviour.rules import TagRules
from triggers.decisions import Profile
from triggers.pings import PingBatch
from triggers.presence_state import PresenceState
from triggers.presence_subset import due_user_ids, extract_users, merge_users, user_ids


class NoSessionError(RuntimeError):
    """A batch was asked for outside :meth:`PartitionStore.session`."""


class PartitionStore:
    """The pipeline's store for one partition (see the module docstring)."""

    def __init__(self, store: PostgresStore, checkpoint: Checkpoint) -> None:
        self._pg = store
        self.checkpoint = checkpoint
        self._conn: asyncpg.Connection | None = None
        self._versions: dict[str, int] = {}

    async def prepare(self, cores: TenantCores, tenant_ids: Iterable[str]) -> None:
        """Before a :meth:`session`: read the tenants' catalogue versions (once per
        session) and have their cores built, so that the session's batches need no
        second connection — a pool whose connections all hold sessions waiting for one
        more would deadlock. A tenant that fails here fails again, alone, in its batch."""
        self._versions = {}
        for tenant_id in sorted(set(tenant_ids)):
            with contextlib.suppress(NotFoundError, CoreBuildError):
                await cores.get(self, tenant_id)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[None]:
        """One PostgreSQL transaction for every batch inside the block; commits at its
        clean end (call :meth:`prepare` first)."""
        async with self._pg.owned_transaction() as conn:
            self._conn = conn
            try:
                with reading_on(conn):
                    yield
            finally:
                self._conn = None

    # -- IngestStore --------------------------------------------------------------

    @asynccontextmanager
    async def batch(self, tenant_id: str, user_ids: Sequence[str], *,
                    skip_locked: bool = False) -> AsyncIterator[BatchTx]:
        if self._conn is None:
            raise NoSessionError("PartitionStore.batch outside a session")
        inner = self._pg.owned_batch(self._conn, tenant_id, user_ids)
        tx = _PartitionTx(inner, self.checkpoint.state(tenant_id))
        yield tx
        tx.commit()

    async def due_users(self, tenant_id: str, now: float, limit: int) -> list[str]:
        state = self.checkpoint.tenants.get(tenant_id)
        return [] if state is None else due_user_ids(state, now, limit)

    def any_due(self, now: float) -> bool:
        """Whether any user of the partition has a timer due at or before ``now``."""
        return any(due_user_ids(state, now, 1) for state in self.checkpoint.tenants.values())

    async def catalog_version(self, tenant_id: str) -> int:
        version = self._versions.get(tenant_id)
        if version is None:
            version = self._versions[tenant_id] = await self._pg.catalog_version(tenant_id)
        return version

    async def load_catalog(self, tenant_id: str) -> Catalog:
        return await self._pg.load_catalog(tenant_id)

    async def list_tenants(self) -> list[TenantRecord]:
        """The tenants with presence in this partition (the timer loop's round)."""
        return [TenantRecord(t, t, 0.0) for t in sorted(self.checkpoint.tenants)]

    # -- what location decisions read of the behaviour role -----------------------
    # (``server.behaviour_service.behaviour_facts``: learned tags and ``also``
    # conditions), on the session's connection: the batch is inside it, and a second
    # connection could deadlock the pool (see :meth:`prepare`).

    async def list_behaviour(
        self, tenant_id: str, user_id: str, *, since: float | None = None, limit: int = 100
    ) -> list[BehaviourRecord]:
        if self._conn is None:
            return await self._pg.list_behaviour(tenant_id, user_id, since=since, limit=limit)
        return await postgres_behaviour.listing(self._conn, tenant_id, user_id, since, limit)

    async def get_features_of(self, tenant_id: str,
                              user_ids: Sequence[str]) -> dict[str, UserFeatures]:
        if self._conn is None:
            return await self._pg.get_features_of(tenant_id, user_ids)
        return await postgres_behaviour.features_of(self._conn, tenant_id, user_ids)

    async def get_tag_rules(self, tenant_id: str) -> TagRules | None:
        if self._conn is None:
            return await self._pg.get_tag_rules(tenant_id)
        return await postgres_behaviour.get_rules(self._conn, tenant_id)


class _PartitionTx:
    """A batch on the session's transaction; presence from and to the partition's
    in-memory state (merged back only when the batch block ends cleanly)."""

    def __init__(self, inner: Any, presence: PresenceState) -> None:
        self._inner = inner
        self._presence = presence
        self._saved: PresenceState | None = None

    @property
    def tenant_id(self) -> str:
        return str(self._inner.tenant_id)

    @property
    def user_ids(self) -> tuple[str, ...]:
        return tuple(self._inner.user_ids)

    async def load_state(self) -> PresenceState:
        return extract_users(self._presence, self.user_ids)

    async def save_state(self, state: PresenceState) -> None:
        outside = set(user_ids(state)) - set(self.user_ids)
        if outside:
            raise ValueError(f"users {sorted(outside)} are not in this batch")
        self._saved = state

    def commit(self) -> None:
        if self._saved is not None:
            merge_users(self._presence, self._saved)

    async def load_profiles(self, users: Sequence[str] | None = None) -> dict[str, Profile]:
        found: dict[str, Profile] = await self._inner.load_profiles(users)
        return found

    async def load_ledger(self, since: float,
                          users: Sequence[str] | None = None) -> LedgerSnapshot:
        found: LedgerSnapshot = await self._inner.load_ledger(since, users)
        return found

    async def load_push_feedback(
        self, since: float, users: Sequence[str] | None = None
    ) -> tuple[PushFeedback, ...]:
        found: tuple[PushFeedback, ...] = await self._inner.load_push_feedback(since, users)
        return found

    async def insert_pings(self, pings: PingBatch, *, received_at: float) -> int:
        return int(await self._inner.insert_pings(pings, received_at=received_at))

    async def insert_events(self, events: Sequence[EventRecord]) -> int:
        return int(await self._inner.insert_events(events))

    async def insert_decisions(self, decisions: Sequence[DecisionRecord]) -> int:
        return int(await self._inner.insert_decisions(decisions))

    async def insert_ledger(self, entries: Sequence[KeyedEntry]) -> int:
        return int(await self._inner.insert_ledger(entries))

    async def insert_deliveries(self, deliveries: Sequence[NewDelivery]) -> list[DeliveryRecord]:
        created: list[DeliveryRecord] = await self._inner.insert_deliveries(deliveries)
        return created
