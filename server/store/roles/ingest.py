"""The ingest role: the hot path's batch transaction over locked users (presence, pings,
the keyed rows), and which users have a timer due."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from server.store.base import (
    DecisionRecord,
    DeliveryRecord,
    EventRecord,
    KeyedEntry,
    LedgerSnapshot,
    NewDelivery,
    PushFeedback,
)
from server.store.roles.catalog import CatalogSource
from server.store.roles.tenants import TenantDirectory
from triggers.decisions import Profile
from triggers.pings import PingBatch
from triggers.presence_state import PresenceState


class BatchTx(Protocol):
    """The processing transaction of :meth:`IngestStore.batch`: the locked users' data.

    Reads see what was committed before the lock was taken (plus nothing of this
    transaction's own writes). Writes are visible to others only after a clean exit.
    Writing a row of a user not in :attr:`user_ids` raises
    :class:`~server.store.errors.OutsideBatchError`.
    """

    @property
    def tenant_id(self) -> str: ...

    @property
    def user_ids(self) -> tuple[str, ...]:
        """The users locked, sorted (with ``skip_locked``: those actually claimed)."""
        ...

    async def load_state(self) -> PresenceState:
        """The locked users' presence as one engine state, holding exactly the locked
        users that have presence (zero counters, ``fence_ids`` unset: the caller
        reconciles against the current venues). A private copy: changing it changes
        nothing stored until :meth:`save_state`."""
        ...

    async def load_profiles(self, users: Sequence[str] | None = None) -> dict[str, Profile]:
        """Profiles of the locked users (or of ``users``, locked ones) that have one."""
        ...

    async def load_ledger(
        self, since: float, users: Sequence[str] | None = None
    ) -> LedgerSnapshot:
        """The locked users' (or ``users``', locked ones) ledger entries with
        ``at >= since`` (by ``at``, then recording order) and their ignored streaks."""
        ...

    async def load_push_feedback(
        self, since: float, users: Sequence[str] | None = None
    ) -> tuple[PushFeedback, ...]:
        """The locked users' (or ``users``', locked ones) sent pushes created at or after
        ``since``, by user (code point order) then time, and whether each was opened."""
        ...

    async def insert_pings(self, pings: PingBatch, *, received_at: float) -> int:
        """Append the pings (every one given: the raw record); returns the count."""
        ...

    # The keyed inserts: a key stored already, or given earlier in the same call, is
    # skipped, so the first row given for a key is the one kept.

    async def insert_events(self, events: Sequence[EventRecord]) -> int:
        """Insert events; existing keys are skipped. Returns how many were new."""
        ...

    async def insert_decisions(self, decisions: Sequence[DecisionRecord]) -> int:
        """Insert decisions; existing keys are skipped. Returns how many were new."""
        ...

    async def insert_ledger(self, entries: Sequence[KeyedEntry]) -> int:
        """Insert ledger entries; existing keys are skipped. Returns how many were new."""
        ...

    async def insert_deliveries(self, deliveries: Sequence[NewDelivery]) -> list[DeliveryRecord]:
        """Create pending outbox rows; a key that exists, or came earlier in the call,
        is skipped (ON CONFLICT DO NOTHING). Returns the rows created now, in the order
        given (each once)."""
        ...

    async def save_state(self, state: PresenceState) -> None:
        """Replace the presence of every user ``state`` holds (each must be locked; the
        state is handed over and must not be used afterwards). A user's next due time —
        what :meth:`IngestStore.due_users` orders by — is its earliest open-visit timer."""
        ...




class IngestStore(CatalogSource, TenantDirectory, Protocol):
    """What :mod:`server.pipeline` runs on: batch transactions and due timers, the
    catalogue its cores compile, and the tenants its timer loop visits."""

    def batch(
        self, tenant_id: str, user_ids: Sequence[str], *, skip_locked: bool = False
    ) -> AbstractAsyncContextManager[BatchTx]:
        """``async with store.batch(tenant, users) as tx:`` — ONE transaction holding
        the users' locks (taken in a fixed order, so two batches never deadlock).
        Commits on a clean exit, rolls back when the block raises.

        ``skip_locked=True`` (the timer loop) claims only users no other batch holds
        right now and leaves the rest (``tx.user_ids`` says which were claimed).
        """
        ...

    async def due_users(self, tenant_id: str, now: float, limit: int) -> list[str]:
        """Users whose next timer is due at or before ``now``, earliest first. Only a
        hint: claim them with ``batch(..., skip_locked=True)`` and reread under lock."""
        ...
