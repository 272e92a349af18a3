"""Storage: the :class:`Store` port and its two implementations.

``open_store(None)`` gives the embedded :class:`MemoryStore` (process lifetime);
``open_store(url)`` a :class:`PostgresStore` with migrations applied.
"""

from __future__ import annotations

from server.store.base import (
    BatchTx,
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
    Store,
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


async def open_store(database_url: str | None, *, schema: str = "public") -> Store:
    """The store a service runs on: PostgreSQL when a URL is given (migrations applied
    at start-up), else the embedded in-memory store."""
    if not database_url:
        return MemoryStore()
    return await PostgresStore.open(database_url, schema=schema)


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
