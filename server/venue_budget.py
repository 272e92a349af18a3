"""Per-tenant budgets on venue writes: one tenant cannot queue up unbounded venue work.

Every venue write (``PUT``, import, ``DELETE``) costs CPU in proportion to vertices:
validating the request's geometries, then rebuilding the tenant's whole geofence index.
:class:`VenueWriteBudget` bounds both, per tenant:

- **one at a time**: a tenant's venue writes run one after the other (validation and
  store write); at most ``max_queued`` more wait behind the one in flight, and a write
  past that is refused at once (429 ``venue_writes_busy``, ``Retry-After: 1``). Index
  rebuilds are one in flight per tenant too, and changes made while one runs are
  compiled together by the next (:class:`server.tenant_core.TenantCores`).
- **a vertex budget**: a token bucket of ``vertices_per_s`` holding at most
  ``burst_vertices``. A write is let in while the bucket is not in debt, and then
  charged what it cost: the positions of the request's geometries plus the vertices
  of the index rebuilt for it. So one large import is let in when the bucket is full
  and pays afterwards; a tenant in debt gets 429 ``venue_budget_exceeded`` with
  ``Retry-After`` saying when it is out of debt. Reading venues is not limited here.

The budgets live in this process (one server node); with several nodes each has its
own. Runs in the event loop; ``monotonic`` is the time source (tests pass a fake one).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from server.errors import ApiError

BUSY_RETRY_AFTER_S = 1


@dataclass(slots=True)
class _Tenant:
    lock: asyncio.Lock
    waiting: int = 0
    tokens: float = 0.0
    at: float = 0.0


class VenueWriteBudget:
    """The venue-write budgets of every tenant of this process (see the module doc)."""

    def __init__(
        self,
        *,
        vertices_per_s: float,
        burst_vertices: float,
        max_queued: int,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.vertices_per_s = vertices_per_s
        self.burst_vertices = burst_vertices
        self.max_queued = max_queued
        self._now = monotonic
        self._tenants: dict[str, _Tenant] = {}

    @asynccontextmanager
    async def write(self, tenant_id: str) -> AsyncIterator[None]:
        """Hold the tenant's venue-write turn: raises 429 when the tenant is in debt or
        already has ``max_queued`` writes waiting; otherwise waits for the writes ahead."""
        tenant = self._tenant(tenant_id)
        self._admit(tenant)
        if tenant.lock.locked() and tenant.waiting >= self.max_queued:
            raise ApiError(429, "venue_writes_busy",
                           f"this tenant already has {tenant.waiting + 1} venue writes in "
                           f"progress; they run one at a time, retry in "
                           f"{BUSY_RETRY_AFTER_S} s",
                           headers={"Retry-After": str(BUSY_RETRY_AFTER_S)})
        tenant.waiting += 1
        try:
            await tenant.lock.acquire()
        finally:
            tenant.waiting -= 1
        try:
            self._admit(tenant)  # writes ahead of it may have spent the budget
            yield
        finally:
            tenant.lock.release()

    def charge(self, tenant_id: str, vertices: int) -> None:
        """Take ``vertices`` of work from the tenant's bucket (it may go into debt)."""
        tenant = self._tenant(tenant_id)
        self._refill(tenant)
        tenant.tokens -= max(0, vertices)

    def balance(self, tenant_id: str) -> float:
        """The vertices left in the tenant's bucket now (negative: in debt)."""
        tenant = self._tenant(tenant_id)
        self._refill(tenant)
        return tenant.tokens

    def _tenant(self, tenant_id: str) -> _Tenant:
        tenant = self._tenants.get(tenant_id)
        if tenant is None:
            tenant = _Tenant(asyncio.Lock(), tokens=self.burst_vertices, at=self._now())
            self._tenants[tenant_id] = tenant
        return tenant

    def _refill(self, tenant: _Tenant) -> None:
        now = self._now()
        tenant.tokens = min(self.burst_vertices,
                            tenant.tokens + max(0.0, now - tenant.at) * self.vertices_per_s)
        tenant.at = now

    def _admit(self, tenant: _Tenant) -> None:
        self._refill(tenant)
        if tenant.tokens < 0:
            wait_s = max(1, math.ceil(-tenant.tokens / self.vertices_per_s))
            raise ApiError(
                429, "venue_budget_exceeded",
                f"this tenant's venue writes used their budget ({self.vertices_per_s:,.0f} "
                f"vertices a second, GEOPUSH_VENUE_WRITE_VERTICES_PER_S); retry in {wait_s} s",
                headers={"Retry-After": str(wait_s)})
