"""The housekeeping role: readiness, retention and shutdown."""

from __future__ import annotations

from typing import Protocol

from server.store.base import Readiness
from server.store.roles.tenants import TenantDirectory


class HousekeepingStore(TenantDirectory, Protocol):
    """What the operator's probes and the retention loop ask of a store."""

    async def ready(self) -> Readiness:
        """Whether the store can serve (PostgreSQL: connected, every migration applied)."""
        ...

    async def prune_pings(self, tenant_id: str, *, before: float, limit: int) -> int:
        """Delete at most ``limit`` of the tenant's raw pings received before ``before``
        (the retention period's start); returns how many. Presence, events and
        decisions are not pings and stay."""
        ...

    async def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...
