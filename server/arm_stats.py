"""Per-arm send and click counts for ``optimize: thompson``, cached per tenant.

Thompson sampling needs every arm's sends and clicks at every decision; asking the store
per decision would put a query on the hot path. Instead a background loop reads the
campaign statistics the store already aggregates (``campaign_stats``: deliveries by
status and feedback by kind, per variant) every :data:`REFRESH_S` seconds, for the
tenants this process has a core of and only for their ``thompson`` campaigns, and swaps
the tenant's :class:`~triggers.learning.signals.FeedbackBook` into
:class:`~server.tenant_core.TenantCores` in one assignment. Decisions read the cached
book: counts up to a refresh old, which costs Thompson sampling a little exploration
and nothing else. A failing tenant is logged and skipped; the loop never dies of it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from server.store.base import CampaignAggregate
from server.store.errors import StoreError
from server.tenant_core import TenantCores
from triggers.decisions.ledger import FeedbackKind
from triggers.decisions.models import CampaignStatus
from triggers.learning.signals import Counts, FeedbackBook

log = logging.getLogger("geopush.arm_stats")

REFRESH_S = 60.0
"""How old the arm counts a decision reads may be: a minute of clicks changes little."""


class ArmStatsSource(Protocol):
    """The store role the refresher reads (``OutboxStore.campaign_stats``)."""

    async def campaign_stats(self, tenant_id: str, campaign_id: str) -> CampaignAggregate: ...


def arm_counts(stats: CampaignAggregate) -> dict[str, Counts]:
    """Sends (deliveries with status ``sent``) and clicked sends per variant."""
    out: dict[str, Counts] = {}
    for variant in stats.variants:
        sent = variant.by_status.get("sent", 0)
        clicked = min(variant.feedback.get(FeedbackKind.CLICKED.value, 0), sent)
        out[variant.variant_id] = Counts(sent, clicked)
    return out


class ArmStatsRefresher:
    """Keeps each tenant's Thompson arm counts fresh in ``cores`` (runs in the event loop)."""

    def __init__(self, store: ArmStatsSource, cores: TenantCores,
                 refresh_s: float = REFRESH_S) -> None:
        self._store = store
        self._cores = cores
        self._refresh_s = refresh_s

    async def refresh(self, tenant_id: str) -> None:
        """Reload the tenant's counts now (no thompson campaign: no counts)."""
        core = self._cores.cached(tenant_id)
        wanted = [] if core is None else [c.id for c in core.campaigns.campaigns
                                          if c.optimize == "thompson"
                                          and c.status is CampaignStatus.ACTIVE]
        if not wanted:
            self._cores.set_signals(tenant_id, None)
            return
        book = FeedbackBook()
        for campaign_id in wanted:
            book.set_arm_counts(campaign_id,
                                arm_counts(await self._store.campaign_stats(tenant_id,
                                                                            campaign_id)))
        self._cores.set_signals(tenant_id, book)

    async def run(self) -> None:
        """Refresh every tenant, then wait ``refresh_s``; forever."""
        while True:
            for tenant_id in self._cores.tenant_ids():
                try:
                    await self.refresh(tenant_id)
                except StoreError as exc:
                    log.warning("arm counts of tenant %s not refreshed: %s", tenant_id, exc)
            await asyncio.sleep(self._refresh_s)
