"""The storage port: a narrow async :class:`Store` protocol and its record types.

Two implementations pass one contract-test suite (``tests/server/store``):
:class:`server.store.memory.MemoryStore` (embedded default, process lifetime) and
:class:`server.store.postgres.PostgresStore` (asyncpg; production). Nothing above this
module knows which one runs.

Contracts every implementation keeps:

- **Tenant-scoped.** Every method but :meth:`Store.find_key` takes ``tenant_id`` and
  sees only that tenant's rows; an id of another tenant is simply "not there" (``None``,
  ``False``, :class:`~server.store.errors.NotFoundError`), never "forbidden". An unknown
  tenant reads as an empty one (``None``, ``[]``, ``False``); writes to it, and
  ``catalog_version`` / ``load_catalog`` / ``get_policy`` / ``batch``, raise ``NotFoundError``.
- **Runs in the event loop**; no method blocks it (PostgreSQL is awaited, the memory
  store does dict work only).
- **Catalogue versions.** Every change of a tenant's venues, campaigns or policy bumps
  its ``catalog_version`` in the same write, so a compiled core tagged with a version
  is stale exactly when the number moved.
- **One transaction per batch.** :meth:`Store.batch` locks the given users of one
  tenant until it exits; everything written through the :class:`BatchTx` becomes
  visible at once on a clean exit and not at all when the block raises.
- **Idempotent hot-path writes.** Events, decisions, ledger entries and deliveries
  carry a key that is UNIQUE per tenant; writing one again is a no-op. Reprocessing
  therefore never records, counts or sends anything twice.

Times are float epoch seconds, as in the core.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, Protocol

from triggers.decisions import (
    Campaign,
    CampaignStatus,
    Decision,
    FeedbackKind,
    LedgerEntry,
    Profile,
    TenantPolicy,
)
from triggers.pings import PingBatch
from triggers.presence_events import PresenceEvent
from triggers.presence_state import PresenceState
from venues.model import Venue

# --------------------------------------------------------------------------- tenants, keys


class Role(StrEnum):
    """What an API key may do (DESIGN.md, HTTP API)."""

    ADMIN = "admin"
    """Everything in its tenant, including keys."""
    MANAGER = "manager"
    """Venues, campaigns, policy, profiles."""
    SDK = "sdk"
    """Pings (and a user's own inbox / stream)."""


def hash_key(secret: str) -> str:
    """The stored form of an API key: SHA-256 hex of its UTF-8 bytes.

    Keys are long random tokens, so an unsalted fast hash is enough (no dictionary to
    attack) and lets :meth:`Store.find_key` look the hash up by equality.
    """
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TenantRecord:
    tenant_id: str
    name: str
    created_at: float


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """An API key as stored: never the secret, only its hash."""

    tenant_id: str
    key_id: str
    role: Role
    name: str
    created_at: float
    revoked: bool = False


# --------------------------------------------------------------------------- catalogue


@dataclass(frozen=True, slots=True)
class BBox:
    """A lon/lat box in degrees; a venue matches when its bounding box intersects it."""

    min_lng: float
    min_lat: float
    max_lng: float
    max_lat: float


@dataclass(frozen=True, slots=True)
class PolicyRecord:
    """A tenant's policy: decision rules and presence overrides.

    ``presence`` holds :class:`triggers.presence_policy.PresencePolicy` field names with
    scalar values (``{"silence_timeout_s": 600}``); absent keys keep the defaults. It is
    kept as data because the HTTP layer validates it and the tenant core builds it.
    """

    policy: TenantPolicy = field(default_factory=TenantPolicy)
    presence: Mapping[str, float | int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Catalog:
    """One consistent read of what a tenant's core is compiled from."""

    tenant_id: str
    version: int
    venues: tuple[Venue, ...]
    """All venues, enabled or not, ordered by id."""
    campaigns: tuple[Campaign, ...]
    """All campaigns, any status, ordered by id."""
    policy: PolicyRecord


# --------------------------------------------------------------------------- hot-path records


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A presence event with its key (UNIQUE per tenant: one row per visit, kind and
    dwell threshold)."""

    event_key: str
    event: PresenceEvent
    recorded_at: float


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """A decision with its key (the event's key: one decision per event)."""

    decision_key: str
    decision: Decision


@dataclass(frozen=True, slots=True)
class KeyedEntry:
    """A ledger entry with its key (a sent push: the delivery's idempotency key)."""

    entry_key: str
    entry: LedgerEntry


@dataclass(frozen=True, slots=True)
class LedgerSnapshot:
    """Ledger rows of some users since a horizon, and their ignored streaks: what an
    :class:`~triggers.decisions.InMemoryLedger` is preloaded with."""

    entries: tuple[LedgerEntry, ...]
    streaks: Mapping[str, int]


class DeliveryStatus(StrEnum):
    """Outbox states. ``pending`` → ``sent`` | ``failed`` (retried later) → ``dead``;
    ``expired`` when the offer's TTL passed undelivered."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    DEAD = "dead"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """An outbox row to create. ``idempotency_key`` is UNIQUE per tenant."""

    idempotency_key: str
    user_id: str
    campaign_id: str
    variant_id: str
    venue_id: str
    visit_id: str
    event: str
    channel: str
    title: str
    body: str
    locale: str | None
    created_at: float
    expires_at: float

    @property
    def delivery_id(self) -> str:
        """Derived from the key, so a retried create names the same delivery."""
        return "d_" + self.idempotency_key[:32]


@dataclass(frozen=True, slots=True)
class DeliveryRecord(NewDelivery):
    """An outbox row as stored: the :class:`NewDelivery` it was created from, and where
    it stands (``delivery_id`` stays derived from the key)."""

    @classmethod
    def pending(cls, new: NewDelivery) -> DeliveryRecord:
        """The row ``new`` becomes when it is created."""
        return cls(**{f.name: getattr(new, f.name) for f in fields(NewDelivery)},
                   updated_at=new.created_at)

    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    next_attempt_at: float | None = None
    last_error: str | None = None
    feedback: tuple[str, ...] = ()
    """Feedback kinds received, in arrival order (``delivered``, ``opened``, ...); each
    kind at most once (feedback is idempotent)."""
    updated_at: float | None = None
    claimed_until: float | None = None
    """A dispatcher owns the row until then (see :meth:`Store.claim_deliveries`)."""
    claimed_by: str | None = None
    """The claim (one per :meth:`Store.claim_deliveries` call) that owns the row."""
    provider_id: str | None = None
    """The channel's id for the accepted message (``Delivered.provider_id``)."""
    settled: bool = False
    """A sent offer past its TTL whose fatigue outcome has been recorded."""


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What one claimed delivery came to, written by :meth:`Store.complete_deliveries`.

    ``status``: ``sent``, ``failed`` (retry at ``next_attempt_at``), ``dead`` or
    ``expired``; ``channel``: the channel actually used (the dispatcher may pick another
    than the decision did, e.g. the in-app inbox while the app is open)."""

    delivery_id: str
    status: DeliveryStatus
    channel: str | None = None
    next_attempt_at: float | None = None
    last_error: str | None = None
    provider_id: str | None = None


@dataclass(frozen=True, slots=True)
class ExpirySweep:
    """What :meth:`Store.expire_deliveries` did: offers expired undelivered, and sent
    offers whose TTL passed without any reaction (recorded as ``ignored``)."""

    expired: tuple[DeliveryRecord, ...] = ()
    ignored: tuple[DeliveryRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class VariantAggregate:
    """One variant's outbox numbers (see :meth:`Store.campaign_stats`)."""

    variant_id: str
    deliveries: int
    by_status: Mapping[str, int]
    """Outbox status → deliveries."""
    feedback: Mapping[str, int]
    """Feedback kind → deliveries that got it (each delivery counts once per kind)."""
    users: int
    """Distinct users with a delivery of this variant (treated, whatever the outcome)."""
    converted_users: int
    """Of those, users who converted (``converted`` feedback or a reported conversion)."""


@dataclass(frozen=True, slots=True)
class CampaignAggregate:
    """A campaign's numbers, aggregated by the store (no row scan in Python)."""

    campaign_id: str
    decisions: Mapping[tuple[str, str], int]
    """(outcome, reason) → how often the campaign was considered with that result."""
    variants: tuple[VariantAggregate, ...]
    """By variant id."""
    control_users: int
    """Distinct users held out (control ledger entries of the campaign)."""
    control_converted: int
    """Of those, users with a reported conversion for the campaign."""


@dataclass(frozen=True, slots=True)
class Readiness:
    ok: bool
    detail: str


# --------------------------------------------------------------------------- paging

DecisionPageKey = tuple[float, float, str]
"""A decision's position in a user's log: (decided_at, event time, key), newest first."""
InboxPageKey = tuple[float, str]
"""An inbox message's position: (created_at, delivery id), newest first."""


def decision_page_key(record: DecisionRecord) -> DecisionPageKey:
    return (record.decision.decided_at, record.decision.at, record.decision_key)


def inbox_page_key(record: DeliveryRecord) -> InboxPageKey:
    return (record.created_at, record.delivery_id)


# --------------------------------------------------------------------------- the ports


class BatchTx(Protocol):
    """The processing transaction of :meth:`Store.batch`: the locked users' data.

    Reads see what was committed before the lock was taken (plus nothing of this
    transaction's own writes). Writes are visible to others only after a clean exit.
    Writing a row of a user not in :attr:`user_ids` raises
    :class:`~server.store.errors.OutsideBatchError`.
    """

    @property
    def tenant_id(self) -> str: ...

    @property
    def user_ids(self) -> tuple[str, ...]:
        """The users locked, sorted (with ``skip_locked``: those actually claimed)."""
        ...

    async def load_state(self) -> PresenceState:
        """The locked users' presence as one engine state, holding exactly the locked
        users that have presence (zero counters, ``fence_ids`` unset: the caller
        reconciles against the current venues). A private copy: changing it changes
        nothing stored until :meth:`save_state`."""
        ...

    async def load_profiles(self, users: Sequence[str] | None = None) -> dict[str, Profile]:
        """Profiles of the locked users (or of ``users``, locked ones) that have one."""
        ...

    async def load_ledger(
        self, since: float, users: Sequence[str] | None = None
    ) -> LedgerSnapshot:
        """The locked users' (or ``users``', locked ones) ledger entries with
        ``at >= since`` (by ``at``, then recording order) and their ignored streaks."""
        ...

    async def insert_pings(self, pings: PingBatch, *, received_at: float) -> int:
        """Append the pings (every one given: the raw record); returns the count."""
        ...

    async def insert_events(self, events: Sequence[EventRecord]) -> int:
        """Insert events; existing keys are skipped. Returns how many were new."""
        ...

    async def insert_decisions(self, decisions: Sequence[DecisionRecord]) -> int:
        """Insert decisions; existing keys are skipped. Returns how many were new."""
        ...

    async def insert_ledger(self, entries: Sequence[KeyedEntry]) -> int:
        """Insert ledger entries; existing keys are skipped. Returns how many were new."""
        ...

    async def insert_deliveries(self, deliveries: Sequence[NewDelivery]) -> list[DeliveryRecord]:
        """Create pending outbox rows; a key that exists is skipped (ON CONFLICT DO
        NOTHING). Returns the rows created now, in the order given."""
        ...

    async def save_state(self, state: PresenceState) -> None:
        """Replace the presence of every user ``state`` holds (each must be locked; the
        state is handed over and must not be used afterwards). A user's next due time —
        what :meth:`Store.due_users` orders by — is its earliest open-visit timer."""
        ...


class Store(Protocol):
    """Everything the service keeps. See the module docstring for the contracts."""

    # -- lifecycle -------------------------------------------------------------------

    async def ready(self) -> Readiness:
        """Whether the store can serve (PostgreSQL: connected, every migration applied)."""
        ...

    async def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...

    # -- tenants and keys ------------------------------------------------------------

    async def ensure_tenant(self, tenant_id: str, *, name: str = "") -> TenantRecord:
        """The tenant, created (with the default policy, catalogue version 0) if missing."""
        ...

    async def get_tenant(self, tenant_id: str) -> TenantRecord | None: ...

    async def list_tenants(self) -> list[TenantRecord]:
        """Every tenant, by id (for background loops that visit each)."""
        ...

    async def create_key(
        self, tenant_id: str, *, key_id: str, key_hash: str, role: Role, name: str = ""
    ) -> KeyRecord:
        """Store a key by its hash (:func:`hash_key`). Raises ``ConflictError`` when the
        hash or the tenant's ``key_id`` exists, ``NotFoundError`` for an unknown tenant."""
        ...

    async def find_key(self, key_hash: str) -> KeyRecord | None:
        """The key with this hash, revoked or not (the caller refuses revoked ones).
        The one lookup not scoped by tenant: the hash is the credential."""
        ...

    async def list_keys(self, tenant_id: str) -> list[KeyRecord]: ...

    async def revoke_key(self, tenant_id: str, key_id: str) -> bool:
        """Mark the key revoked; False when the tenant has no such key."""
        ...

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

    async def catalog_version(self, tenant_id: str) -> int:
        """The tenant's catalogue version; ``NotFoundError`` for an unknown tenant."""
        ...

    async def load_catalog(self, tenant_id: str) -> Catalog:
        """Venues, campaigns, policy and version from one consistent read."""
        ...

    # -- profiles --------------------------------------------------------------------

    async def put_profile(self, tenant_id: str, profile: Profile) -> bool:
        """Create or replace a profile; True when created."""
        ...

    async def patch_profile(
        self, tenant_id: str, user_id: str, patch: Mapping[str, Any]
    ) -> Profile:
        """Apply an RFC 7396 JSON merge patch to the stored profile (objects merge,
        ``null`` deletes, anything else replaces), validate, store, return it. Raises
        ``NotFoundError`` when the user has no profile and ``pydantic.ValidationError`` when
        the result is not a valid profile (nothing is stored then)."""
        ...

    async def get_profile(self, tenant_id: str, user_id: str) -> Profile | None: ...

    async def erase_user(self, tenant_id: str, user_id: str) -> dict[str, int]:
        """Delete everything about the user: profile, pings, presence, events,
        decisions, ledger entries, feedback streak, deliveries. Waits for the user's
        batch lock, so no batch in flight writes the user back. Returns rows deleted
        per kind (all zeros for an unknown user)."""
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

    # -- history ---------------------------------------------------------------------

    async def list_decisions(
        self, tenant_id: str, user_id: str, *, limit: int = 50, before: float | None = None,
        after_key: DecisionPageKey | None = None,
    ) -> list[DecisionRecord]:
        """The user's decisions, newest first (by ``decided_at``, then event time, then
        key in code point order); ``before``: only those decided earlier; ``after_key``:
        only those after that position of this order (the last row of a page, see
        :func:`decision_page_key`), so pages neither skip nor repeat rows that share a
        time."""
        ...

    async def list_events(
        self, tenant_id: str, user_id: str, *, limit: int = 100
    ) -> list[EventRecord]:
        """The user's presence events, oldest first (by ``at``), the last ``limit``."""
        ...

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
        self, tenant_id: str, delivery_id: str, kind: FeedbackKind, *, now: float
    ) -> DeliveryRecord | None:
        """Append feedback to the delivery and update the user's ignored streak in the
        same transaction (dismissed/ignored +1, clicked/converted → 0). Idempotent: a
        kind the delivery already has changes nothing (the same report twice counts
        once). None when the delivery does not exist."""
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
        :func:`inbox_page_key`)."""
        ...

    # -- the outbox dispatcher -------------------------------------------------------

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

    async def prune_pings(self, tenant_id: str, *, before: float, limit: int) -> int:
        """Delete at most ``limit`` of the tenant's raw pings received before ``before``
        (the retention period's start); returns how many. Presence, events and
        decisions are not pings and stay."""
        ...

    async def expire_deliveries(self, tenant_id: str, *, now: float, limit: int) -> ExpirySweep:
        """Settle offers whose TTL passed (``expires_at <= now``): unclaimed pending or
        failed ones become ``expired`` (never sent); sent ones not yet settled get
        ``ignored`` feedback (and the user's ignored streak +1) unless the user already
        reacted (opened, clicked, dismissed, converted), and are marked settled. At most
        ``limit`` of each; one transaction."""
        ...

    # -- contacts, channel settings, stream secrets ----------------------------------

    async def get_profiles(self, tenant_id: str, user_ids: Sequence[str]) -> dict[str, Profile]:
        """The profiles of ``user_ids`` that exist."""
        ...

    async def remove_contact(
        self, tenant_id: str, user_id: str, channel: str, address: str
    ) -> bool:
        """Remove a dead address from the user's contacts (a device token for ``fcm`` /
        ``apns``, the ``email`` or the ``phone`` for ``sms``); True when it was there."""
        ...

    async def get_channel_config(self, tenant_id: str) -> dict[str, Any] | None:
        """The tenant's channel settings as stored (validated by the caller), or None."""
        ...

    async def put_channel_config(self, tenant_id: str, config: Mapping[str, Any]) -> None:
        """Replace the tenant's channel settings; ``NotFoundError`` for an unknown tenant."""
        ...

    async def stream_secret(self, tenant_id: str) -> str:
        """The tenant's secret for in-app stream tokens, made (random, 256 bits) on first
        use; ``NotFoundError`` for an unknown tenant."""
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

    # -- processing ------------------------------------------------------------------

    def batch(
        self, tenant_id: str, user_ids: Sequence[str], *, skip_locked: bool = False
    ) -> AbstractAsyncContextManager[BatchTx]:
        """``async with store.batch(tenant, users) as tx:`` — ONE transaction holding
        the users' locks (taken in a fixed order, so two batches never deadlock).
        Commits on a clean exit, rolls back when the block raises.

        ``skip_locked=True`` (the timer loop) claims only users no other batch holds
        right now and leaves the rest (``tx.user_ids`` says which were claimed).
        """
        ...

    async def due_users(self, tenant_id: str, now: float, limit: int) -> list[str]:
        """Users whose next timer is due at or before ``now``, earliest first. Only a
        hint: claim them with ``batch(..., skip_locked=True)`` and reread under lock."""
        ...
