"""The feedback counts the learning options read in the service, cached per tenant.

Thompson sampling needs every arm's sends and clicks at every decision; asking the store
per decision would put a query on the hot path. Instead a background loop reads the
campaign statistics the store already aggregates (``campaign_stats``: deliveries by
status and feedback by kind, per variant) every :data:`REFRESH_S` seconds, for the
tenants this process has a core of and only for their ``thompson`` campaigns, and swaps
the tenant's :class:`~triggers.learning.signals.FeedbackBook` into
:class:`~server.tenant_core.TenantCores` in one assignment. Decisions read the cached
book: counts up to a refresh old, which costs Thompson sampling a little exploration
and nothing else. A failing tenant is logged and skipped; the loop never dies of it.

A tenant whose core ``learns_per_user`` (``channel_choice: auto``, ``learned_caps``) also
gets its open rate per channel over the last :data:`USER_HISTORY_S` in the cached book
(the channel prior), and each batch loads its deciding users' sent pushes of that period
and whether they were opened, in the batch's transaction (:func:`batch_signals`): one
indexed query per batch, not per decision.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from server.store.base import CampaignAggregate, PushFeedback
from server.store.errors import StoreError
from server.store.roles import BatchTx
from server.tenant_core import TenantCore, TenantCores
from triggers.decisions.ledger import FeedbackKind
from triggers.decisions.models import CampaignStatus
from triggers.learning.signals import Counts, FeedbackBook, Signals

log = logging.getLogger("geopush.arm_stats")

REFRESH_S = 60.0
"""How old the arm counts a decision reads may be: a minute of clicks changes little."""
USER_HISTORY_S = 30 * 86_400.0
"""How far back the pushes and opens of channel choice reach (the learned cap reads the
last week of them): a month of habits, and a bounded number of rows per user."""


class ArmStatsSource(Protocol):
    """The store role the refresher reads (``OutboxStore.campaign_stats``)."""

    async def campaign_stats(self, tenant_id: str, campaign_id: str) -> CampaignAggregate: ...

    async def channel_open_counts(
        self, tenant_id: str, since: float
    ) -> dict[str, tuple[int, int]]: ...


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

    def __init__(self, store: ArmStatsSource, cores: TenantCores, clock: Callable[[], float],
                 refresh_s: float = REFRESH_S) -> None:
        self._store = store
        self._cores = cores
        self._clock = clock
        self._refresh_s = refresh_s

    async def refresh(self, tenant_id: str) -> None:
        """Reload the tenant's counts now (no thompson campaign: no counts)."""
        core = self._cores.cached(tenant_id)
        wanted = [] if core is None else [c.id for c in core.campaigns.campaigns
                                          if c.optimize == "thompson"
                                          and c.status is CampaignStatus.ACTIVE]
        per_user = core is not None and core.learns_per_user
        if not wanted and not per_user:
            self._cores.set_signals(tenant_id, None)
            return
        book = FeedbackBook()
        if per_user:
            rates = await self._store.channel_open_counts(tenant_id,
                                                          self._clock() - USER_HISTORY_S)
            book.set_tenant_channel_counts({ch: Counts(n, k) for ch, (n, k) in rates.items()})
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
                except Exception:  # the loop must not die of one tenant
                    log.exception("arm counts of tenant %s not refreshed", tenant_id)
            await asyncio.sleep(self._refresh_s)


class _BatchSignals:
    """The tenant's cached counts (arms, channel prior) with one batch's users' pushes."""

    def __init__(self, tenant: Signals | None, users: FeedbackBook) -> None:
        self._tenant = tenant
        self._users = users

    def arm_counts(self, campaign_id: str) -> Mapping[str, Counts]:
        return {} if self._tenant is None else self._tenant.arm_counts(campaign_id)

    def tenant_channel_counts(self) -> Mapping[str, Counts]:
        return {} if self._tenant is None else self._tenant.tenant_channel_counts()

    def channel_counts(self, user_id: str) -> Mapping[str, Counts]:
        return self._users.channel_counts(user_id)

    def recent_engagement(self, user_id: str, since: float) -> Counts:
        return self._users.recent_engagement(user_id, since)


def users_book(rows: Sequence[PushFeedback]) -> FeedbackBook:
    """A book of the users' pushes and opens (``rows`` by user, then time)."""
    book = FeedbackBook()
    for row in rows:
        push = book.record_send(row.user_id, "", "", row.channel, row.at)
        if row.opened:
            book.record_open(push)
    return book


async def batch_signals(tx: BatchTx, core: TenantCore, cached: Signals | None,
                        users: Sequence[str], now: float) -> Signals | None:
    """What a batch's decisions read: the cached tenant counts, plus — when the tenant
    learns per user — the deciding users' pushes of the last :data:`USER_HISTORY_S`."""
    if not core.learns_per_user or not users:
        return cached
    rows = await tx.load_push_feedback(now - USER_HISTORY_S, users)
    return _BatchSignals(cached, users_book(rows))
