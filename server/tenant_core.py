"""Per-tenant compiled cores: the immutable indexes a batch runs against.

A :class:`TenantCore` is built from one :class:`~server.store.base.Catalog` read and
never changes: the geofence index of the enabled venues, venues by id, the campaign
index, the tenant policy, the presence policy (with every campaign's own dwell
threshold added to the venues it selects) and the ledger horizon.

:class:`TenantCores` caches one core per tenant by ``catalog_version``. A batch asks
for the core (one cheap version read); when the version moved, the core is rebuilt
off the event loop (``asyncio.to_thread``: an index of thousands of venues takes
seconds) and swapped in with a single reference assignment, so a batch always works
on one whole core, old or new, never a mix.

Venue changes reach open visits through the pipeline: every batch reconciles the
loaded users against the current index (``triggers.presence.reconcile_venues``), so
a venue deleted or disabled ends its visits with ``venue_removed`` at the users'
next batch or next due timer, whichever comes first.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from geo.index import GeofenceIndex
from server.store.base import Catalog
from server.store.roles import CatalogSource
from triggers.decisions import (
    CampaignIndex,
    CampaignStatus,
    EventKind,
    TenantPolicy,
    history_horizon_s,
    selector_matches,
)
from triggers.errors import TriggerError
from triggers.presence_policy import PresencePolicy
from venues.model import Venue

log = logging.getLogger("geopush.core")


class CoreBuildError(Exception):
    """A tenant's catalogue cannot be compiled (bad presence settings, duplicate
    campaign ids); the previous core, if any, stays in use."""


@dataclass(frozen=True, slots=True)
class TenantCore:
    """Everything a batch of one tenant reads; immutable, shared by concurrent batches."""

    tenant_id: str
    catalog_version: int
    index: GeofenceIndex
    """Enabled venues only: a disabled venue neither starts nor keeps visits."""
    venues: Mapping[str, Venue]
    """Every venue by id, enabled or not (a decision needs the venue of an EXIT)."""
    campaigns: CampaignIndex
    policy: TenantPolicy
    presence: PresencePolicy
    ledger_horizon_s: float
    """How far back the ledger rows a decision needs reach (``history_horizon_s``)."""


def build_core(catalog: Catalog) -> TenantCore:
    """Compile ``catalog``. CPU-bound (the geofence index): call it off the loop.

    Raises :class:`CoreBuildError` when the catalogue cannot be compiled.
    """
    try:
        settings: dict[str, Any] = dict(catalog.policy.presence)
        presence = PresencePolicy(**settings)
    except (TypeError, TriggerError) as exc:
        raise CoreBuildError(f"tenant {catalog.tenant_id}: presence policy: {exc}") from exc
    enabled = [v for v in catalog.venues if v.enabled]
    presence = presence.with_venues(
        ((v.id, v.dwell_s) for v in enabled), _campaign_dwell_thresholds(catalog, enabled)
    )
    try:
        campaigns = CampaignIndex(catalog.campaigns)
    except ValueError as exc:
        raise CoreBuildError(f"tenant {catalog.tenant_id}: {exc}") from exc
    # The index must answer every near_m the engine asks: the widest exit margin, or the
    # accuracy of the least accurate ping still used for transitions.
    halo_m = max(presence.max_accuracy_m, presence.widest_exit_margin_m())
    index = GeofenceIndex.build([v.fence() for v in enabled], halo_m=halo_m)
    return TenantCore(
        tenant_id=catalog.tenant_id,
        catalog_version=catalog.version,
        index=index,
        venues=MappingProxyType({v.id: v for v in catalog.venues}),
        campaigns=campaigns,
        policy=catalog.policy.policy,
        presence=presence,
        ledger_horizon_s=history_horizon_s(catalog.policy.policy, catalog.campaigns),
    )


def _campaign_dwell_thresholds(
    catalog: Catalog, venues: list[Venue]
) -> dict[str, tuple[int, ...]]:
    """Venue id → the dwell thresholds of the active DWELL campaigns selecting it, so
    the engine fires a DWELL at each (a campaign asking 600 s at a 300 s venue)."""
    wanted: dict[str, set[int]] = {}
    for campaign in catalog.campaigns:
        trigger = campaign.trigger
        if (campaign.status is not CampaignStatus.ACTIVE or trigger.event is not EventKind.DWELL
                or trigger.dwell_s is None):
            continue
        # Rounded up: the campaign matches a DWELL whose dwell_s is at least its own.
        threshold = math.ceil(trigger.dwell_s)
        for venue in venues:
            if selector_matches(campaign.venues, venue):
                wanted.setdefault(venue.id, set()).add(threshold)
    return {vid: tuple(sorted(t)) for vid, t in wanted.items()}


class TenantCores:
    """The per-tenant core cache of one process. Runs in the event loop."""

    def __init__(self) -> None:
        self._cores: dict[str, TenantCore] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._failed: dict[str, int] = {}
        """Tenant → the catalogue version that did not compile: not retried until it moves."""

    def cached(self, tenant_id: str) -> TenantCore | None:
        """The core in use for the tenant, without checking its version."""
        return self._cores.get(tenant_id)

    async def get(self, store: CatalogSource, tenant_id: str) -> TenantCore:
        """The tenant's core for its current catalogue version, rebuilt if it moved.

        Concurrent callers of one tenant share one rebuild. Raises ``NotFoundError`` for an
        unknown tenant and :class:`CoreBuildError` when the catalogue does not compile
        (and no older core exists to keep serving).
        """
        version = await store.catalog_version(tenant_id)
        core = self._cores.get(tenant_id)
        if core is not None and (core.catalog_version == version
                                 or self._failed.get(tenant_id) == version):
            return core
        lock = self._locks.setdefault(tenant_id, asyncio.Lock())
        async with lock:
            core = self._cores.get(tenant_id)
            if core is not None and core.catalog_version >= version:
                return core
            catalog = await store.load_catalog(tenant_id)
            try:
                built = await asyncio.to_thread(build_core, catalog)
            except CoreBuildError:
                if core is None:
                    raise
                self._failed[tenant_id] = catalog.version
                log.exception("tenant %s: catalogue v%d does not compile; keeping v%d",
                              tenant_id, catalog.version, core.catalog_version)
                return core
            self._cores[tenant_id] = built  # the atomic swap: one reference assignment
            self._failed.pop(tenant_id, None)
            return built

    def forget(self, tenant_id: str) -> None:
        """Drop the tenant's core (it is rebuilt on the next :meth:`get`)."""
        self._cores.pop(tenant_id, None)
