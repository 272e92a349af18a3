"""The storage port's record types: what the role protocols of
:mod:`server.store.roles` take and return. Frozen dataclasses; times are float epoch
seconds, as in the core.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum

from triggers.decisions import Campaign, Decision, LedgerEntry, TenantPolicy
from triggers.decisions.rich import RichContent
from triggers.presence_events import PresenceEvent
from venues.model import Venue

# --------------------------------------------------------------------------- tenants, keys


def token_user_key(user_id: str) -> str:
    """What a user's stream-token epoch is kept under: the SHA-256 (hex) of the id. The
    epoch must outlive the user's erasure (or an old token would open the stream again),
    and a digest is no readable id."""
    return hashlib.sha256(user_id.encode()).hexdigest()


class Role(StrEnum):
    """What an API key may do (docs/security.md, "Tenants and roles")."""

    ADMIN = "admin"
    """Everything in its tenant, including keys."""
    MANAGER = "manager"
    """Venues, campaigns, policy, profiles."""
    SDK = "sdk"
    """Pings (and a user's own inbox / stream)."""


def hash_key(secret: str) -> str:
    """The stored form of an API key: SHA-256 hex of its UTF-8 bytes.

    Keys are long random tokens, so an unsalted fast hash is enough (no dictionary to
    attack) and lets :meth:`TenantStore.find_key` look the hash up by equality.
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


@dataclass(frozen=True, slots=True)
class PushFeedback:
    """A sent push and whether the user opened it (``opened``, ``clicked`` or
    ``converted`` feedback): what channel choice and learned caps learn from."""

    user_id: str
    channel: str
    at: float
    """When it was created (decided), epoch seconds."""
    opened: bool


OPENED_KINDS = ("opened", "clicked", "converted")
"""Feedback kinds that say the user opened the push."""


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
    rich: RichContent | None = None
    """The image, link and buttons chosen for the user (``Chosen.rich``)."""

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
    """A dispatcher owns the row until then (see :meth:`OutboxStore.claim_deliveries`)."""
    claimed_by: str | None = None
    """The claim (one per :meth:`OutboxStore.claim_deliveries` call) that owns the row."""
    provider_id: str | None = None
    """The channel's id for the accepted message (``Delivered.provider_id``)."""
    settled: bool = False
    """A sent offer past its TTL whose fatigue outcome has been recorded."""
    button: str | None = None
    """The id of the button the user pressed: given with the first ``clicked``
    feedback (one of ``rich.buttons``)."""


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What one claimed delivery came to, written by :meth:`OutboxStore.complete_deliveries`.

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
    """What :meth:`OutboxStore.expire_deliveries` did: offers expired undelivered, and sent
    offers whose TTL passed without any reaction (recorded as ``ignored``)."""

    expired: tuple[DeliveryRecord, ...] = ()
    ignored: tuple[DeliveryRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class VariantAggregate:
    """One variant's outbox numbers (see :meth:`OutboxStore.campaign_stats`)."""

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
    buttons: Mapping[str, int] = field(default_factory=dict)
    """Button id → clicked deliveries whose click pressed that button."""


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


@dataclass(frozen=True, slots=True)
class SlotCursor:
    """How far a scheduled slot's fan-out got in one zone group (see
    :mod:`server.scheduler`): users up to ``after_user`` (code point order) are settled;
    ``done`` when the whole group is."""

    cursor_id: str
    campaign_id: str
    at: float
    after_user: str | None
    done: bool
