"""The storage port, split by role: each consumer names the roles it uses, each store
implements them all, and :class:`Store` (every role) is for the composition root.

- :class:`TenantStore`: tenants, API keys, stream secrets;
- :class:`CatalogStore`: venues, campaigns, policy, channel settings
  (:class:`CatalogSource`: the version and the consistent read a core is compiled from);
- :class:`ProfileStore`: profiles and contacts, recorded events and decisions, erasure;
- :class:`IngestStore`: the batch transaction (:class:`BatchTx`) and due timers;
- :class:`OutboxStore`: deliveries, dispatch, feedback, inbox, conversions, stats;
- :class:`HousekeepingStore`: readiness, ping retention, close;
- :class:`BehaviourStore`: behaviour events, profile features, tag rules, their retention;
- :class:`ModelStore`: learned models, versioned, with their evaluation; training reads.

:class:`TenantDirectory` (``list_tenants``) is part of every role with a loop over the
tenants. ``docs/storage.md`` says who uses which.

Two implementations pass one contract-test suite (``tests/server/store``):
:class:`server.store.memory.MemoryStore` (embedded default, process lifetime) and
:class:`server.store.postgres.PostgresStore` (asyncpg; production). Nothing above the
port knows which one runs. Contracts every implementation keeps:

- **Tenant-scoped.** Every method but :meth:`TenantStore.find_key` takes ``tenant_id``
  and sees only that tenant's rows; an id of another tenant is simply "not there"
  (``None``, ``False``, :class:`~server.store.errors.NotFoundError`), never "forbidden".
  An unknown tenant reads as an empty one (``None``, ``[]``, ``False``); writes to it, and
  ``catalog_version`` / ``load_catalog`` / ``get_policy`` / ``batch``, raise ``NotFoundError``.
- **Runs in the event loop**; no method blocks it (PostgreSQL is awaited, the memory
  store does dict work only).
- **One clock.** What a store stamps itself (``created_at``, ``updated_at``) comes from
  the clock it was built with (``clock=``, default ``time.time``), the one the app injects
  everywhere else.
- **Catalogue versions.** Every change of a tenant's venues, campaigns or policy bumps
  its ``catalog_version`` in the same write, so a compiled core tagged with a version
  is stale exactly when the number moved.
- **One transaction per batch.** :meth:`IngestStore.batch` locks the given users of one
  tenant until it exits; everything written through the :class:`BatchTx` becomes
  visible at once on a clean exit and not at all when the block raises.
- **Idempotent hot-path writes.** Events, decisions, ledger entries and deliveries
  carry a key that is UNIQUE per tenant; writing one again is a no-op. Reprocessing
  therefore never records, counts or sends anything twice.

Times are float epoch seconds, as in the core.
"""

from __future__ import annotations

from typing import Protocol

from server.store.roles.behaviour import BehaviourRecord, BehaviourStore
from server.store.roles.catalog import CatalogSource, CatalogStore
from server.store.roles.housekeeping import HousekeepingStore
from server.store.roles.ingest import BatchTx, IngestStore
from server.store.roles.models import ModelRecord, ModelStore
from server.store.roles.outbox import OutboxStore
from server.store.roles.profiles import ProfileStore
from server.store.roles.tenants import TenantDirectory, TenantStore


class Store(
    TenantStore, CatalogStore, ProfileStore, IngestStore, OutboxStore, HousekeepingStore,
    BehaviourStore, ModelStore, Protocol,
):
    """Every role: what ``open_store`` returns and the app holds. A consumer names the
    roles it uses instead, so that its test doubles implement only those."""


__all__ = [
    "BatchTx",
    "BehaviourRecord",
    "BehaviourStore",
    "CatalogSource",
    "CatalogStore",
    "HousekeepingStore",
    "IngestStore",
    "ModelRecord",
    "ModelStore",
    "OutboxStore",
    "ProfileStore",
    "Store",
    "TenantDirectory",
    "TenantStore",
]
