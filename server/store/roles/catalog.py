"""The catalogue role: venues, campaigns, policy and channel settings of a tenant."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from server.store.base import BBox, Catalog, PolicyRecord
from triggers.decisions import Campaign, CampaignStatus
from venues.model import Venue


class CatalogSource(Protocol):
    """What a tenant's compiled core is built from (:class:`server.tenant_core.TenantCores`)."""

    async def catalog_version(self, tenant_id: str) -> int:
        """The tenant's catalogue version; ``NotFoundError`` for an unknown tenant."""
        ...

    async def load_catalog(self, tenant_id: str) -> Catalog:
        """Venues, campaigns, policy and version from one consistent read."""
        ...


class CatalogStore(CatalogSource, Protocol):
    """Venues, campaigns, tenant policy and channel settings. Every change of venues,
    campaigns or policy bumps the catalogue version in the same write."""

    # -- venues ----------------------------------------------------------------------

    async def put_venue(
        self, tenant_id: str, venue: Venue, *, max_venues: int | None = None
    ) -> bool:
        """Create or replace a venue (stored as its GeoJSON feature); True when created.
        Bumps the catalogue version. ``NotFoundError`` for an unknown tenant;
        ``LimitExceededError`` (nothing written) when the tenant would have more than
        ``max_venues`` venues."""
        ...

    async def put_venues(
        self, tenant_id: str, venues: Sequence[Venue], *, max_venues: int | None = None
    ) -> int:
        """Create or replace many venues in one write and one version bump (an import);
        returns how many were created. ``max_venues`` as for :meth:`put_venue`, checked
        in the same transaction as the write (two concurrent imports cannot both pass
        it)."""
        ...

    async def get_venue(self, tenant_id: str, venue_id: str) -> Venue | None: ...

    async def delete_venue(
        self, tenant_id: str, venue_id: str, *, cascade: bool = False
    ) -> tuple[str, ...]:
        """Delete the venue, and with ``cascade`` every venue below it (children,
        grandchildren, by ``parent_id``); returns the ids deleted, the venue's first
        (empty: no such venue; else the version was bumped). Without ``cascade`` a venue
        that is a parent raises :class:`~server.store.errors.VenueHasChildrenError` and
        nothing is deleted."""
        ...

    async def list_venues(
        self,
        tenant_id: str,
        *,
        bbox: BBox | None = None,
        kind: str | None = None,
        tag: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[Venue]:
        """Venues ordered by id, filtered by bounding-box intersection, kind and tag;
        ``after`` (an id) and ``limit`` page through them."""
        ...

    # -- campaigns and policy --------------------------------------------------------

    async def create_campaign(self, tenant_id: str, campaign: Campaign) -> None:
        """Create; ``ConflictError`` when the id exists. Bumps the catalogue version."""
        ...

    async def put_campaign(self, tenant_id: str, campaign: Campaign) -> bool:
        """Create or replace; True when created. Bumps the catalogue version."""
        ...

    async def get_campaign(self, tenant_id: str, campaign_id: str) -> Campaign | None: ...

    async def list_campaigns(
        self, tenant_id: str, *, status: CampaignStatus | None = None,
        after: str | None = None, limit: int | None = None,
    ) -> list[Campaign]:
        """Campaigns ordered by id (code point order), optionally of one status;
        ``after`` (an id) and ``limit`` page through them."""
        ...

    async def delete_campaign(self, tenant_id: str, campaign_id: str) -> bool: ...

    async def set_campaign_status(
        self, tenant_id: str, campaign_id: str, status: CampaignStatus
    ) -> Campaign | None:
        """The campaign with its new status, or None when it does not exist."""
        ...

    async def get_policy(self, tenant_id: str) -> PolicyRecord:
        """The tenant's policy (defaults until one is put); ``NotFoundError`` for an
        unknown tenant."""
        ...

    async def put_policy(self, tenant_id: str, record: PolicyRecord) -> None:
        """Replace the policy; bumps the catalogue version."""
        ...

    # -- channel settings ------------------------------------------------------------

    async def get_channel_config(self, tenant_id: str) -> dict[str, Any] | None:
        """The tenant's channel settings as stored (validated by the caller), or None."""
        ...

    async def put_channel_config(self, tenant_id: str, config: Mapping[str, Any]) -> None:
        """Replace the tenant's channel settings; ``NotFoundError`` for an unknown tenant.
        Not part of the catalogue version: channels are read per dispatch round."""
        ...
