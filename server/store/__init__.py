"""Storage: the port, split by role (:mod:`server.store.roles`; :class:`Store` is every
role), and its implementations: ``open_store(None)`` gives the embedded
:class:`MemoryStore` (process lifetime), ``open_store(url)`` a :class:`PostgresStore`."""

from __future__ import annotations

import time
from collections.abc import Callable

from server.store.base import (
    BBox,
    CampaignAggregate,
    Catalog,
    DecisionRecord,
    DeliveryOutcome,
    DeliveryRecord,
    DeliveryStatus,
    EventRecord,
    ExpirySweep,
    KeyedEntry,
    KeyRecord,
    LedgerSnapshot,
    NewDelivery,
    PolicyRecord,
    Readiness,
    Role,
    TenantRecord,
    VariantAggregate,
    hash_key,
)
from server.store.errors import (
    ConflictError,
    LimitExceededError,
    NotFoundError,
    OutsideBatchError,
    StoreError,
    StoreUnavailableError,
    VenueHasChildrenError,
)
from server.store.memory import MemoryStore
from server.store.postgres import PostgresStore
from server.store.roles import BatchTx, Store


async def open_store(database_url: str | None, *, schema: str = "public",
                     clock: Callable[[], float] = time.time) -> Store:
    """The store a service runs on, stamping rows with ``clock``: PostgreSQL when a URL
    is given (migrations applied at start-up), else the embedded in-memory store."""
    if not database_url:
        return MemoryStore(clock=clock)
    return await PostgresStore.open(database_url, schema=schema, clock=clock)


__all__ = [
    "BBox",
    "BatchTx",
    "CampaignAggregate",
    "Catalog",
    "ConflictError",
    "DecisionRecord",
    "DeliveryOutcome",
    "DeliveryRecord",
    "DeliveryStatus",
    "EventRecord",
    "ExpirySweep",
    "KeyRecord",
    "KeyedEntry",
    "LedgerSnapshot",
    "LimitExceededError",
    "MemoryStore",
    "NewDelivery",
    "NotFoundError",
    "OutsideBatchError",
    "PolicyRecord",
    "PostgresStore",
    "Readiness",
    "Role",
    "Store",
    "StoreError",
    "StoreUnavailableError",
    "TenantRecord",
    "VariantAggregate",
    "VenueHasChildrenError",
    "hash_key",
    "open_store",
]
