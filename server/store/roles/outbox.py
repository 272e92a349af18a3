"""The outbox role: deliveries and their dispatch, feedback, the in-app inbox, and the
numbers a campaign's stats are made of."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from server.store.base import (
    CampaignAggregate,
    DeliveryOutcome,
    DeliveryRecord,
    DeliveryStatus,
    ExpirySweep,
    InboxPageKey,
)
from server.store.roles.tenants import TenantDirectory
from triggers.decisions import FeedbackKind


class OutboxStore(TenantDirectory, Protocol):
    """Deliveries (created by the ingest role's batches), claimed and completed by the
    dispatchers, settled by their TTL; feedback, conversions and campaign aggregates."""

    # -- deliveries ------------------------------------------------------------------

    async def get_delivery(self, tenant_id: str, delivery_id: str) -> DeliveryRecord | None: ...

    async def list_deliveries(
        self,
        tenant_id: str,
        *,
        user_id: str | None = None,
        status: DeliveryStatus | None = None,
        limit: int = 100,
    ) -> list[DeliveryRecord]:
        """Deliveries by creation time (oldest first), filtered."""
        ...

    async def update_delivery(
        self,
        tenant_id: str,
        delivery_id: str,
        *,
        status: DeliveryStatus,
        attempts: int | None = None,
        next_attempt_at: float | None = None,
        last_error: str | None = None,
        now: float,
    ) -> DeliveryRecord | None:
        """Record a delivery attempt's outcome (for the channel workers)."""
        ...

    async def record_feedback(
        self, tenant_id: str, delivery_id: str, kind: FeedbackKind, *, now: float,
        button: str | None = None,
    ) -> DeliveryRecord | None:
        """Append feedback to the delivery and update the user's ignored streak in the
        same transaction (dismissed/ignored +1, clicked/converted → 0). Idempotent: a
        kind the delivery already has changes nothing (the same report twice counts
        once). ``button`` (with ``clicked``; the caller checked it is one of the
        delivery's) is stored with the click that is recorded, so a second click report
        does not change it. None when the delivery does not exist."""
        ...

    async def count_deliveries(self, tenant_id: str, status: DeliveryStatus) -> int:
        """How many of the tenant's deliveries have ``status`` (the outbox depth gauge)."""
        ...

    async def list_inbox(
        self, tenant_id: str, user_id: str, *, limit: int = 50, before: float | None = None,
        after_key: InboxPageKey | None = None,
    ) -> list[DeliveryRecord]:
        """The user's in-app messages (channel ``inbox``, status ``sent``), newest
        first (by creation time, then id in code point order); ``before``: created
        earlier; ``after_key``: after that position of this order (see
        :func:`~server.store.base.inbox_page_key`)."""
        ...

    # -- the dispatcher --------------------------------------------------------------

    async def claim_deliveries(
        self, tenant_id: str, *, now: float, limit: int, lease_s: float, claim: str
    ) -> list[DeliveryRecord]:
        """Claim up to ``limit`` due deliveries for one dispatcher: status ``pending`` or
        ``failed``, ``next_attempt_at`` (or creation) at or before ``now``, offer not
        expired (``expires_at > now``), and no live claim (``claimed_until`` unset or
        past). Claimed rows get ``claimed_until = now + lease_s``, ``claimed_by =
        claim`` and ``attempts + 1``; others calling at the same time get other rows
        (PostgreSQL: ``FOR UPDATE SKIP LOCKED``). Oldest due first. A dispatcher that
        dies leaves its rows to whoever claims after the lease."""
        ...

    async def complete_deliveries(
        self, tenant_id: str, claim: str, outcomes: Sequence[DeliveryOutcome], *, now: float
    ) -> int:
        """Write the outcomes of claimed deliveries and release their claims, in one
        transaction. Rows no longer held by ``claim`` (its lease ran out and another
        dispatcher took them) are left alone. Returns how many were written."""
        ...

    async def expire_deliveries(self, tenant_id: str, *, now: float, limit: int) -> ExpirySweep:
        """Settle offers whose TTL passed (``expires_at <= now``): unclaimed pending or
        failed ones become ``expired`` (never sent); sent ones not yet settled get
        ``ignored`` feedback (and the user's ignored streak +1) unless the user already
        reacted (opened, clicked, dismissed, converted), and are marked settled. At most
        ``limit`` of each; one transaction."""
        ...

    # -- stats -----------------------------------------------------------------------

    async def record_conversion(
        self, tenant_id: str, campaign_id: str, user_id: str, *, at: float
    ) -> bool:
        """Record that ``user_id`` converted for ``campaign_id`` (exposed or held out);
        True when new (one conversion per campaign and user)."""
        ...

    async def campaign_stats(self, tenant_id: str, campaign_id: str) -> CampaignAggregate:
        """The campaign's decisions, deliveries, feedback and conversions, aggregated."""
        ...

    async def channel_open_counts(self, tenant_id: str, since: float) -> dict[str, tuple[int, int]]:
        """Per channel: the tenant's sent pushes created at or after ``since``, and how
        many of them were opened (``opened``, ``clicked`` or ``converted``)."""
        ...

    async def delivery_timeline(
        self, tenant_id: str, campaign_id: str, *, bucket_s: float
    ) -> list[tuple[float, str, str, int]]:
        """The campaign's deliveries counted per time bucket (``created_at`` rounded
        down to a multiple of ``bucket_s``), channel and status: ``(bucket start,
        channel, status, count)`` rows ordered by bucket, channel, status."""
        ...
