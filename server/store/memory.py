"""The embedded store: everything in this process's memory. No setup; the default of
``geopush serve`` and ``geopush simulate``.

**Durability: the process's lifetime only.** A restart loses every tenant, key, venue,
campaign, profile, presence record, decision and delivery. Use PostgreSQL
(``--database-url``) for anything that must survive a restart or be shared between
processes; this store serves one process (one node) only.

**Pings are kept for the most recent** :data:`PING_RETENTION` **per tenant** (oldest
dropped first, columnar chunks of a batch each): the raw record is for debugging and
erasure here, not an archive; the retried-batch check (a (user, ts) already stored is
not stored again) covers the retained pings.

Presence is one live :class:`~triggers.presence_state.PresenceState` per tenant. A batch
works on a private copy of its users (:func:`~triggers.presence_subset.extract_users`)
and its result is merged back at commit, so a batch that fails changes nothing and no
per-user record is encoded or decoded on the hot path.

Concurrency: one ``asyncio.Lock`` per tenant serialises batch transactions (and
erasures) of the tenant, which is what makes a batch's read-decide-write atomic here.
Catalogue writes are single synchronous dict updates, atomic in the event loop. A
batch buffers its writes and applies them at a clean exit, so an exception inside
the ``async with`` leaves nothing behind. Runs in the event loop; nothing blocks.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import math
import secrets
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Container, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np
import orjson
from numpy.typing import NDArray

from server.store.base import (
    OPENED_KINDS,
    BBox,
    CampaignAggregate,
    Catalog,
    DecisionPageKey,
    DecisionRecord,
    DeliveryOutcome,
    DeliveryRecord,
    DeliveryStatus,
    EventRecord,
    ExpirySweep,
    InboxPageKey,
    KeyedEntry,
    KeyRecord,
    LedgerSnapshot,
    NewDelivery,
    PolicyRecord,
    PushFeedback,
    Readiness,
    Role,
    SlotCursor,
    TenantRecord,
    VariantAggregate,
    decision_page_key,
    inbox_page_key,
    token_user_key,
)
from server.store.codec import (
    EncodedVenue,
    bbox_intersects,
    expired_reason,
    merge_patch,
    stored_form,
    venue_bbox,
    venue_feature,
    venue_from_feature,
    without_contact,
)
from server.store.errors import (
    ConflictError,
    LimitExceededError,
    NotFoundError,
    OutsideBatchError,
    StoreError,
    VenueHasChildrenError,
)
from server.store.memory_behaviour import BehaviourLog
from server.store.memory_models import ModelShelf, feedback_page, training_page, visits_page
from server.store.roles.behaviour import BehaviourRecord
from server.store.roles.models import (
    ModelKind,
    ModelRecord,
    TrainingCursor,
    TrainingEvent,
    TrainingSignal,
)
from triggers.behaviour.features import UserFeatures
from triggers.behaviour.rules import TagRules
from triggers.behaviour.triggers import PendingTrigger
from triggers.decisions import (
    Campaign,
    CampaignStatus,
    FeedbackKind,
    LedgerEntry,
    Profile,
)
from triggers.decisions.ledger import ENGAGED_KINDS, IGNORED_KINDS
from triggers.pings import PingBatch
from triggers.presence_state import PresenceState, new_state
from triggers.presence_subset import (
    drop_users,
    due_user_ids,
    extract_users,
    merge_users,
    user_ids,
)
from venues.model import Venue

PING_RETENTION = 250_000
"""Pings kept per tenant by the embedded store (about 200 bytes each with the retry
check). Bounded also because the retry check is one Python set, which each full
collection of the cyclic GC walks: a million entries would be a ~20 ms pause."""


@dataclass(slots=True)
class _PingChunk:
    users: np.ndarray[Any, np.dtype[np.str_]]
    """An array, not a list: nothing here for the cyclic GC to walk."""
    columns: np.ndarray[Any, np.dtype[np.float64]]
    """One row per ping: ts, lat, lng, accuracy_m, speed_mps, heading_deg, mock, received_at."""


@dataclass(slots=True)
class _PingLog:
    """A tenant's retained pings, oldest chunk first, and their (user, ts) keys."""

    limit: int = PING_RETENTION
    chunks: deque[_PingChunk] = field(default_factory=deque)
    keys: set[tuple[str, float]] = field(default_factory=set)
    count: int = 0

    def append(self, chunk: _PingChunk) -> None:
        self.chunks.append(chunk)
        self.keys.update(zip(chunk.users.tolist(), chunk.columns[:, 0].tolist(), strict=True))
        self.count += len(chunk.users)
        while self.count > self.limit and len(self.chunks) > 1:
            old = self.chunks.popleft()
            self.keys.difference_update(
                zip(old.users.tolist(), old.columns[:, 0].tolist(), strict=True))
            self.count -= len(old.users)

    def prune(self, before: float, limit: int) -> int:
        """Drop pings received before ``before``, oldest chunks first, at most ``limit``
        (whole chunks: a chunk is one batch, received at one instant)."""
        gone = 0
        while self.chunks and gone < limit:
            oldest = self.chunks[0]
            if oldest.columns.shape[0] and oldest.columns[0, 7] >= before:
                break
            self.chunks.popleft()
            self.keys.difference_update(
                zip(oldest.users.tolist(), oldest.columns[:, 0].tolist(), strict=True))
            self.count -= len(oldest.users)
            gone += len(oldest.users)
        return gone

    def erase(self, user_id: str) -> int:
        gone = 0
        kept: deque[_PingChunk] = deque()
        for chunk in self.chunks:
            mask = chunk.users != user_id
            n = int((~mask).sum())
            if not n:
                kept.append(chunk)
                continue
            gone += n
            self.keys.difference_update((user_id, ts) for ts in chunk.columns[~mask, 0].tolist())
            if n < len(chunk.users):
                kept.append(_PingChunk(chunk.users[mask], chunk.columns[mask]))
        self.chunks = kept
        self.count -= gone
        return gone


@dataclass(slots=True)
class _Tenant:
    record: TenantRecord
    version: int = 0
    policy: PolicyRecord = field(default_factory=PolicyRecord)
    venues: dict[str, tuple[str, BBox, Venue]] = field(default_factory=dict)
    """id → (feature JSON text, bbox, the venue read back from that text): a reader gets
    a venue of its own from the text, except the catalogue read, which shares the one
    read back at write time (the core never changes a venue), so compiling a tenant's
    core does not parse every outline on the event loop."""
    campaigns: dict[str, Campaign] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)
    presence: PresenceState = field(default_factory=new_state)
    pings: _PingLog = field(default_factory=_PingLog)
    events: dict[str, dict[str, EventRecord]] = field(default_factory=dict)
    decisions: dict[str, dict[str, DecisionRecord]] = field(default_factory=dict)
    ledger: dict[str, dict[str, LedgerEntry]] = field(default_factory=dict)
    streaks: dict[str, int] = field(default_factory=dict)
    deliveries: dict[str, DeliveryRecord] = field(default_factory=dict)
    delivery_keys: dict[str, str] = field(default_factory=dict)
    """idempotency key → delivery id (UNIQUE per tenant)."""
    outbox: set[str] = field(default_factory=set)
    """Ids of pending / failed deliveries (what a dispatcher may claim)."""
    unsettled: set[str] = field(default_factory=set)
    """Ids of sent deliveries whose TTL outcome is not recorded yet."""
    conversions: dict[tuple[str, str], float] = field(default_factory=dict)
    """(campaign id, user id) → when the conversion was reported."""
    feedback_times: dict[str, dict[str, float]] = field(default_factory=dict)
    """Delivery id → feedback kind → when it was recorded (what training reads)."""
    channels: str | None = None
    """The channel settings as JSON text (like a JSONB column)."""
    stream_secret: str | None = None
    stream_epoch: int = 0
    stream_user_epochs: dict[str, int] = field(default_factory=dict)
    """:func:`token_user_key` → the user's stream-token epoch (kept past erasure)."""
    behaviour: BehaviourLog = field(default_factory=BehaviourLog)
    models: ModelShelf = field(default_factory=ModelShelf)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    slot_cursors: dict[str, SlotCursor] = field(default_factory=dict)
    """Scheduled slots' fan-out progress, by cursor id."""
    zone_index: dict[str | None, list[str]] | None = None
    """User ids by ``attributes.timezone``, sorted (what ``profiles_page`` bisects);
    ``None`` after a profile was put or patched: rebuilt on the next page. An erased
    user may stay in it: a page skips ids without a profile."""

    def bump(self) -> None:
        self.version += 1

    def put_delivery(self, row: DeliveryRecord) -> None:
        """Store ``row`` and keep the dispatcher's indexes in step with its status."""
        self.deliveries[row.delivery_id] = row
        did = row.delivery_id
        if row.status in _CLAIMABLE:
            self.outbox.add(did)
        else:
            self.outbox.discard(did)
        if row.status is DeliveryStatus.SENT and not row.settled:
            self.unsettled.add(did)
        else:
            self.unsettled.discard(did)

    def drop_delivery(self, row: DeliveryRecord) -> None:
        del self.deliveries[row.delivery_id]
        del self.delivery_keys[row.idempotency_key]
        self.outbox.discard(row.delivery_id)
        self.unsettled.discard(row.delivery_id)
        self.feedback_times.pop(row.delivery_id, None)


def _bump_user_epoch(tenant: _Tenant, user_id: str) -> int:
    key = token_user_key(user_id)
    epoch = tenant.stream_user_epochs.get(key, 0) + 1
    tenant.stream_user_epochs[key] = epoch
    return epoch


_CLAIMABLE = frozenset({DeliveryStatus.PENDING, DeliveryStatus.FAILED})
_R = TypeVar("_R")
_REACTIONS = frozenset({"opened", "clicked", "dismissed", "converted", "ignored"})
"""Feedback that means the user saw and reacted (or the TTL outcome is recorded)."""


def _parent_of(tenant: _Tenant, venue_id: str) -> str | None:
    return tenant.venues[venue_id][2].parent_id


def _venue_rows(venues: Sequence[Venue]) -> dict[str, tuple[str, BBox, Venue]]:
    """The stored form of ``venues`` (see ``_Tenant.venues``)."""
    rows = {}
    for venue in venues:
        if isinstance(venue, EncodedVenue):  # written by a venue worker process
            text, plain = stored_form(venue)
            rows[venue.id] = (text, venue_bbox(plain), plain)
            continue
        # orjson: a tenth of the standard library's time, so a tenth of the time this
        # thread holds the GIL in one go (the event loop waits that long).
        text = orjson.dumps(venue_feature(venue)).decode()
        rows[venue.id] = (text, venue_bbox(venue), venue_from_feature(orjson.loads(text)))
    return rows


def _descendants(tenant: _Tenant, venue_id: str) -> set[str]:
    """Every venue below ``venue_id`` by ``parent_id`` (cycles cannot loop: each venue
    is visited once)."""
    children: dict[str, list[str]] = {}
    for vid in tenant.venues:
        parent = _parent_of(tenant, vid)
        if parent is not None:
            children.setdefault(parent, []).append(vid)
    found: set[str] = set()
    todo = [venue_id]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found and child != venue_id:
                found.add(child)
                todo.append(child)
    return found


def _due_at(row: DeliveryRecord) -> float:
    return row.created_at if row.next_attempt_at is None else row.next_attempt_at


class MemoryStore:
    """The :class:`~server.store.roles.Store` held in memory (see the module docstring).
    ``clock``: what ``created_at`` is stamped with (epoch seconds)."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._tenants: dict[str, _Tenant] = {}
        self._keys: dict[str, KeyRecord] = {}
        self._closed = False

    def _t(self, tenant_id: str) -> _Tenant:
        if self._closed:
            raise StoreError("store is closed")
        tenant = self._tenants.get(tenant_id)
        if tenant is None:
            raise NotFoundError(f"no tenant {tenant_id!r}")
        return tenant

    def _r(self, tenant_id: str) -> _Tenant:
        """For reads: an unknown tenant reads as an empty one (as in SQL)."""
        if self._closed:
            raise StoreError("store is closed")
        tenant = self._tenants.get(tenant_id)
        return _Tenant(TenantRecord(tenant_id, "", 0.0)) if tenant is None else tenant

    # -- lifecycle -------------------------------------------------------------------

    async def ready(self) -> Readiness:
        if self._closed:
            return Readiness(False, "closed")
        return Readiness(True, "embedded store (in memory, process lifetime)")

    async def close(self) -> None:
        self._closed = True

    # -- tenants and keys ------------------------------------------------------------

    async def ensure_tenant(self, tenant_id: str, *, name: str = "") -> TenantRecord:
        if self._closed:
            raise StoreError("store is closed")
        tenant = self._tenants.get(tenant_id)
        if tenant is None:
            tenant = self._tenants[tenant_id] = _Tenant(
                TenantRecord(tenant_id, name, self._clock()))
        return tenant.record

    async def get_tenant(self, tenant_id: str) -> TenantRecord | None:
        tenant = self._tenants.get(tenant_id)
        return None if tenant is None else tenant.record

    async def list_tenants(self) -> list[TenantRecord]:
        return [self._tenants[t].record for t in sorted(self._tenants)]

    async def create_key(
        self, tenant_id: str, *, key_id: str, key_hash: str, role: Role, name: str = ""
    ) -> KeyRecord:
        self._t(tenant_id)
        if key_hash in self._keys:
            raise ConflictError("a key with this hash exists")
        if any(k.tenant_id == tenant_id and k.key_id == key_id for k in self._keys.values()):
            raise ConflictError(f"key {key_id!r} exists")
        record = KeyRecord(tenant_id, key_id, Role(role), name, self._clock())
        self._keys[key_hash] = record
        return record

    async def find_key(self, key_hash: str) -> KeyRecord | None:
        return self._keys.get(key_hash)

    async def list_keys(self, tenant_id: str) -> list[KeyRecord]:
        return sorted((k for k in self._keys.values() if k.tenant_id == tenant_id),
                      key=lambda k: k.key_id)

    async def revoke_key(self, tenant_id: str, key_id: str) -> bool:
        for key_hash, record in self._keys.items():
            if record.tenant_id == tenant_id and record.key_id == key_id:
                self._keys[key_hash] = replace(record, revoked=True)
                return True
        return False

    # -- venues ----------------------------------------------------------------------

    async def put_venue(
        self, tenant_id: str, venue: Venue, *, max_venues: int | None = None
    ) -> bool:
        return await self.put_venues(tenant_id, [venue], max_venues=max_venues) == 1

    async def put_venues(
        self, tenant_id: str, venues: Sequence[Venue], *, max_venues: int | None = None
    ) -> int:
        self._t(tenant_id)
        # Serialising outlines of thousands of vertices takes milliseconds each: off
        # the loop, before the synchronous part that checks and writes.
        rows = await asyncio.to_thread(_venue_rows, venues)
        tenant = self._t(tenant_id)
        created = len(rows.keys() - tenant.venues.keys())
        if max_venues is not None and len(tenant.venues) + created > max_venues:
            raise LimitExceededError("venues", max_venues, len(tenant.venues) + created)
        tenant.venues.update(rows)
        tenant.bump()
        return created

    async def get_venue(self, tenant_id: str, venue_id: str) -> Venue | None:
        row = self._r(tenant_id).venues.get(venue_id)
        return None if row is None else venue_from_feature(json.loads(row[0]))

    async def delete_venue(
        self, tenant_id: str, venue_id: str, *, cascade: bool = False
    ) -> tuple[str, ...]:
        tenant = self._r(tenant_id)
        if venue_id not in tenant.venues:
            return ()
        below = _descendants(tenant, venue_id)
        if below and not cascade:
            raise VenueHasChildrenError(venue_id, tuple(sorted(
                v for v in below if _parent_of(tenant, v) == venue_id)))
        gone = (venue_id, *sorted(below))
        for vid in gone:
            del tenant.venues[vid]
        tenant.bump()
        return gone

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
        tenant = self._r(tenant_id)
        out: list[Venue] = []
        for venue_id in sorted(tenant.venues):
            if after is not None and venue_id <= after:
                continue
            text, box, _ = tenant.venues[venue_id]
            if bbox is not None and not bbox_intersects(box, bbox):
                continue
            venue = venue_from_feature(json.loads(text))
            if (kind is not None and venue.kind.value != kind) or (
                    tag is not None and tag not in venue.tags):
                continue
            out.append(venue)
            if limit is not None and len(out) >= limit:
                break
        return out

    async def catalog_version(self, tenant_id: str) -> int:
        return self._t(tenant_id).version

    async def load_catalog(self, tenant_id: str) -> Catalog:
        tenant = self._t(tenant_id)
        # Synchronous from here on: no other coroutine can change the tenant meanwhile.
        venues = tuple(tenant.venues[v][2] for v in sorted(tenant.venues))
        campaigns = tuple(tenant.campaigns[c] for c in sorted(tenant.campaigns))
        return Catalog(tenant_id, tenant.version, venues, campaigns, tenant.policy)

    # -- profiles --------------------------------------------------------------------

    async def put_profile(self, tenant_id: str, profile: Profile) -> bool:
        tenant = self._t(tenant_id)
        created = profile.user_id not in tenant.profiles
        tenant.profiles[profile.user_id] = profile
        tenant.zone_index = None
        return created

    async def patch_profile(
        self, tenant_id: str, user_id: str, patch: Mapping[str, Any]
    ) -> Profile:
        tenant = self._t(tenant_id)
        current = tenant.profiles.get(user_id)
        if current is None:
            raise NotFoundError(f"no profile {user_id!r}")
        merged = merge_patch(current.model_dump(mode="json"), patch)
        merged["user_id"] = user_id
        profile = Profile.model_validate(merged)
        tenant.profiles[user_id] = profile
        tenant.zone_index = None
        return profile

    async def get_profile(self, tenant_id: str, user_id: str) -> Profile | None:
        return self._r(tenant_id).profiles.get(user_id)

    async def erase_user(self, tenant_id: str, user_id: str) -> dict[str, int]:
        tenant = self._r(tenant_id)
        async with tenant.lock:
            counts = {
                "profiles": int(tenant.profiles.pop(user_id, None) is not None),
                "pings": tenant.pings.erase(user_id),
                "presence": drop_users(tenant.presence, [user_id]),
                "events": len(tenant.events.pop(user_id, {})),
                "decisions": len(tenant.decisions.pop(user_id, {})),
                "ledger": len(tenant.ledger.pop(user_id, {})),
                "streaks": int(tenant.streaks.pop(user_id, None) is not None),
            }
            gone = [d for d in tenant.deliveries.values() if d.user_id == user_id]
            for delivery in gone:
                tenant.drop_delivery(delivery)
            counts["deliveries"] = len(gone)
            converted = [k for k in tenant.conversions if k[1] == user_id]
            for key in converted:
                del tenant.conversions[key]
            counts["conversions"] = len(converted)
            counts.update(tenant.behaviour.erase(user_id))
            if tenant_id in self._tenants:
                _bump_user_epoch(tenant, user_id)
            return counts

    # -- campaigns and policy --------------------------------------------------------

    async def create_campaign(self, tenant_id: str, campaign: Campaign) -> None:
        tenant = self._t(tenant_id)
        if campaign.id in tenant.campaigns:
            raise ConflictError(f"campaign {campaign.id!r} exists")
        tenant.campaigns[campaign.id] = campaign
        tenant.bump()

    async def put_campaign(self, tenant_id: str, campaign: Campaign) -> bool:
        tenant = self._t(tenant_id)
        created = campaign.id not in tenant.campaigns
        tenant.campaigns[campaign.id] = campaign
        tenant.bump()
        return created

    async def get_campaign(self, tenant_id: str, campaign_id: str) -> Campaign | None:
        return self._r(tenant_id).campaigns.get(campaign_id)

    async def list_campaigns(
        self, tenant_id: str, *, status: CampaignStatus | None = None,
        after: str | None = None, limit: int | None = None,
    ) -> list[Campaign]:
        tenant = self._r(tenant_id)
        found = [tenant.campaigns[c] for c in sorted(tenant.campaigns)
                 if (status is None or tenant.campaigns[c].status is status)
                 and (after is None or c > after)]
        return found if limit is None else found[:limit]

    async def delete_campaign(self, tenant_id: str, campaign_id: str) -> bool:
        tenant = self._r(tenant_id)
        if tenant.campaigns.pop(campaign_id, None) is None:
            return False
        tenant.bump()
        return True

    async def set_campaign_status(
        self, tenant_id: str, campaign_id: str, status: CampaignStatus
    ) -> Campaign | None:
        tenant = self._r(tenant_id)
        campaign = tenant.campaigns.get(campaign_id)
        if campaign is None:
            return None
        campaign = campaign.model_copy(update={"status": CampaignStatus(status)})
        tenant.campaigns[campaign_id] = campaign
        tenant.bump()
        return campaign

    async def get_policy(self, tenant_id: str) -> PolicyRecord:
        return self._t(tenant_id).policy

    async def put_policy(self, tenant_id: str, record: PolicyRecord) -> None:
        tenant = self._t(tenant_id)
        tenant.policy = PolicyRecord(record.policy, dict(record.presence))
        tenant.bump()

    # -- history ---------------------------------------------------------------------

    async def list_decisions(
        self, tenant_id: str, user_id: str, *, limit: int = 50, before: float | None = None,
        after_key: DecisionPageKey | None = None,
    ) -> list[DecisionRecord]:
        rows = self._r(tenant_id).decisions.get(user_id, {}).values()
        chosen = [r for r in rows if (before is None or r.decision.decided_at < before)
                  and (after_key is None or decision_page_key(r) < after_key)]
        chosen.sort(key=lambda r: (r.decision.decided_at, r.decision.at, r.decision_key),
                    reverse=True)
        return chosen[:limit]

    async def list_events(
        self, tenant_id: str, user_id: str, *, limit: int = 100
    ) -> list[EventRecord]:
        rows = sorted(self._r(tenant_id).events.get(user_id, {}).values(),
                      key=lambda r: (r.event.at, r.recorded_at, r.event_key))
        return rows[-limit:] if limit > 0 else []

    async def venue_events(
        self, tenant_id: str, venue_id: str, *, since: float, limit: int = 1000
    ) -> list[EventRecord]:
        rows = sorted((r for by_key in self._r(tenant_id).events.values()
                       for r in by_key.values()
                       if r.event.venue_id == venue_id and r.event.at >= since),
                      key=lambda r: (r.event.at, r.recorded_at, r.event_key))
        return rows[-limit:] if limit > 0 else []

    async def delivery_timeline(
        self, tenant_id: str, campaign_id: str, *, bucket_s: float
    ) -> list[tuple[float, str, str, int]]:
        counts: Counter[tuple[float, str, str]] = Counter(
            (math.floor(d.created_at / bucket_s) * bucket_s, d.channel, d.status.value)
            for d in self._r(tenant_id).deliveries.values() if d.campaign_id == campaign_id)
        return [(*key, n) for key, n in sorted(counts.items())]

    async def recorded_pings(
        self, tenant_id: str, *, since: float, limit: int
    ) -> tuple[PingBatch, NDArray[np.float64]]:
        chunks = list(self._r(tenant_id).pings.chunks)
        users = np.concatenate([c.users for c in chunks]) if chunks else np.empty(0, str)
        cols = np.concatenate([c.columns for c in chunks]) if chunks else np.empty((0, 8))
        keep = np.flatnonzero(cols[:, 0] >= since)
        users, cols = users[keep], cols[keep]
        order = np.lexsort((users, cols[:, 0]))[-limit:] if limit > 0 else keep[:0]
        users, cols = users[order], cols[order]
        batch = PingBatch.from_columns(users.astype(str), cols[:, 0], cols[:, 1], cols[:, 2],
                                       accuracy_m=cols[:, 3], speed_mps=cols[:, 4],
                                       heading_deg=cols[:, 5], mock=cols[:, 6] != 0)
        return batch, cols[:, 7].copy()

    # -- deliveries ------------------------------------------------------------------

    async def get_delivery(self, tenant_id: str, delivery_id: str) -> DeliveryRecord | None:
        return self._r(tenant_id).deliveries.get(delivery_id)

    async def list_deliveries(
        self,
        tenant_id: str,
        *,
        user_id: str | None = None,
        status: DeliveryStatus | None = None,
        limit: int = 100,
    ) -> list[DeliveryRecord]:
        rows = [d for d in self._r(tenant_id).deliveries.values()
                if (user_id is None or d.user_id == user_id)
                and (status is None or d.status is status)]
        rows.sort(key=lambda d: (d.created_at, d.delivery_id))
        return rows[:limit]

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
        tenant = self._r(tenant_id)
        row = tenant.deliveries.get(delivery_id)
        if row is None:
            return None
        row = replace(row, status=DeliveryStatus(status),
                      attempts=row.attempts if attempts is None else attempts,
                      next_attempt_at=next_attempt_at, last_error=last_error, updated_at=now)
        tenant.put_delivery(row)
        return row

    async def record_feedback(
        self, tenant_id: str, delivery_id: str, kind: FeedbackKind, *, now: float,
        button: str | None = None,
    ) -> DeliveryRecord | None:
        tenant = self._r(tenant_id)
        row = tenant.deliveries.get(delivery_id)
        if row is None:
            return None
        kind = FeedbackKind(kind)
        if kind.value in row.feedback:
            return row  # the same report again: counted once
        row = replace(row, feedback=(*row.feedback, kind.value), updated_at=now,
                      button=row.button if button is None else button)
        tenant.put_delivery(row)
        tenant.feedback_times.setdefault(delivery_id, {})[kind.value] = now
        self._streak(tenant, row.user_id, kind)
        return row

    @staticmethod
    def _streak(tenant: _Tenant, user_id: str, kind: FeedbackKind) -> None:
        if kind in IGNORED_KINDS:
            tenant.streaks[user_id] = tenant.streaks.get(user_id, 0) + 1
        elif kind in ENGAGED_KINDS:
            tenant.streaks[user_id] = 0

    async def count_deliveries(self, tenant_id: str, status: DeliveryStatus) -> int:
        tenant = self._r(tenant_id)
        status = DeliveryStatus(status)
        if status in _CLAIMABLE:
            return sum(1 for d in tenant.outbox if tenant.deliveries[d].status is status)
        return sum(1 for d in tenant.deliveries.values() if d.status is status)

    async def list_inbox(
        self, tenant_id: str, user_id: str, *, limit: int = 50, before: float | None = None,
        after_key: InboxPageKey | None = None,
    ) -> list[DeliveryRecord]:
        rows = [d for d in self._r(tenant_id).deliveries.values()
                if d.user_id == user_id and d.channel == "inbox"
                and d.status is DeliveryStatus.SENT
                and (before is None or d.created_at < before)
                and (after_key is None or inbox_page_key(d) < after_key)]
        rows.sort(key=lambda d: (d.created_at, d.delivery_id), reverse=True)
        return rows[:limit]

    # -- the outbox dispatcher -------------------------------------------------------

    async def claim_deliveries(
        self, tenant_id: str, *, now: float, limit: int, lease_s: float, claim: str
    ) -> list[DeliveryRecord]:
        tenant = self._r(tenant_id)
        # Synchronous from here on: two dispatchers in this process cannot interleave.
        due = [d for d in (tenant.deliveries[i] for i in tenant.outbox)
               if _due_at(d) <= now < d.expires_at
               and (d.claimed_until is None or d.claimed_until <= now)]
        due.sort(key=lambda d: (_due_at(d), d.delivery_id))
        claimed: list[DeliveryRecord] = []
        for row in due[:max(0, limit)]:
            mine = replace(row, claimed_until=now + lease_s, claimed_by=claim,
                           attempts=row.attempts + 1, updated_at=now)
            tenant.put_delivery(mine)
            claimed.append(mine)
        return claimed

    async def complete_deliveries(
        self, tenant_id: str, claim: str, outcomes: Sequence[DeliveryOutcome], *, now: float
    ) -> int:
        tenant = self._r(tenant_id)
        written = 0
        for outcome in outcomes:
            row = tenant.deliveries.get(outcome.delivery_id)
            if row is None or row.claimed_by != claim:
                continue
            tenant.put_delivery(replace(
                row, status=DeliveryStatus(outcome.status),
                channel=outcome.channel or row.channel,
                next_attempt_at=outcome.next_attempt_at, last_error=outcome.last_error,
                provider_id=outcome.provider_id or row.provider_id,
                claimed_until=None, claimed_by=None, updated_at=now))
            written += 1
        return written

    async def prune_pings(self, tenant_id: str, *, before: float, limit: int) -> int:
        return self._r(tenant_id).pings.prune(before, limit)

    async def expire_deliveries(self, tenant_id: str, *, now: float, limit: int) -> ExpirySweep:
        tenant = self._r(tenant_id)
        stale = sorted((tenant.deliveries[i] for i in tenant.outbox),
                       key=lambda d: (d.expires_at, d.delivery_id))
        expired: list[DeliveryRecord] = []
        for row in stale:
            if len(expired) >= limit or row.expires_at > now:
                break
            if row.claimed_until is not None and row.claimed_until > now:
                continue  # a dispatcher holds it; it checks the TTL itself before sending
            gone = replace(row, status=DeliveryStatus.EXPIRED,
                           last_error=expired_reason(row.last_error), claimed_until=None,
                           claimed_by=None, updated_at=now)
            tenant.put_delivery(gone)
            expired.append(gone)
        ended = sorted((tenant.deliveries[i] for i in tenant.unsettled),
                       key=lambda d: (d.expires_at, d.delivery_id))
        ignored: list[DeliveryRecord] = []
        for row in ended[:limit]:
            if row.expires_at > now:
                break
            settled = replace(row, settled=True, updated_at=now)
            if _REACTIONS.isdisjoint(row.feedback):
                settled = replace(settled, feedback=(*row.feedback, FeedbackKind.IGNORED.value))
                self._streak(tenant, row.user_id, FeedbackKind.IGNORED)
                ignored.append(settled)
            tenant.put_delivery(settled)
        return ExpirySweep(tuple(expired), tuple(ignored))

    # -- contacts, channel settings, stream secrets ----------------------------------

    async def get_profiles(self, tenant_id: str, user_ids: Sequence[str]) -> dict[str, Profile]:
        profiles = self._r(tenant_id).profiles
        return {u: profiles[u] for u in dict.fromkeys(user_ids) if u in profiles}

    async def remove_contact(
        self, tenant_id: str, user_id: str, channel: str, address: str
    ) -> bool:
        tenant = self._r(tenant_id)
        current = tenant.profiles.get(user_id)
        if current is None:
            return False
        contacts = without_contact(current.contacts, channel, address)
        if contacts is None:
            return False
        tenant.profiles[user_id] = current.model_copy(update={"contacts": contacts})
        return True

    async def get_channel_config(self, tenant_id: str) -> dict[str, Any] | None:
        text = self._r(tenant_id).channels
        return None if text is None else dict(json.loads(text))

    async def put_channel_config(self, tenant_id: str, config: Mapping[str, Any]) -> None:
        self._t(tenant_id).channels = json.dumps(dict(config))

    async def stream_secret(self, tenant_id: str) -> str:
        tenant = self._t(tenant_id)
        if tenant.stream_secret is None:
            tenant.stream_secret = secrets.token_urlsafe(32)
        return tenant.stream_secret

    async def stream_token_epochs(self, tenant_id: str, user_id: str) -> tuple[int, int]:
        tenant = self._r(tenant_id)
        return tenant.stream_epoch, tenant.stream_user_epochs.get(token_user_key(user_id), 0)

    async def revoke_stream_tokens(self, tenant_id: str, user_id: str | None = None) -> int:
        tenant = self._t(tenant_id)
        if user_id is not None:
            return _bump_user_epoch(tenant, user_id)
        tenant.stream_epoch += 1
        return tenant.stream_epoch

    # -- stats -----------------------------------------------------------------------

    async def record_conversion(
        self, tenant_id: str, campaign_id: str, user_id: str, *, at: float
    ) -> bool:
        tenant = self._t(tenant_id)
        key = (campaign_id, user_id)
        if key in tenant.conversions:
            return False
        tenant.conversions[key] = at
        return True

    async def campaign_stats(self, tenant_id: str, campaign_id: str) -> CampaignAggregate:
        tenant = self._r(tenant_id)
        decisions: dict[tuple[str, str], int] = {}
        for by_key in tenant.decisions.values():
            for record in by_key.values():
                for c in record.decision.considered:
                    if c.campaign_id == campaign_id:
                        key = (c.outcome.value, c.reason.value)
                        decisions[key] = decisions.get(key, 0) + 1
        converted = {u for (c, u) in tenant.conversions if c == campaign_id}
        mine = [d for d in tenant.deliveries.values() if d.campaign_id == campaign_id]
        for d in mine:
            if FeedbackKind.CONVERTED.value in d.feedback:
                converted.add(d.user_id)
        variants = []
        for variant_id in sorted({d.variant_id for d in mine}):
            rows = [d for d in mine if d.variant_id == variant_id]
            by_status: dict[str, int] = {}
            feedback: dict[str, int] = {}
            buttons: dict[str, int] = {}
            for d in rows:
                by_status[d.status.value] = by_status.get(d.status.value, 0) + 1
                for kind in set(d.feedback):
                    feedback[kind] = feedback.get(kind, 0) + 1
                if d.button is not None:
                    buttons[d.button] = buttons.get(d.button, 0) + 1
            users = {d.user_id for d in rows}
            variants.append(VariantAggregate(variant_id, len(rows), by_status, feedback,
                                             len(users), len(users & converted), buttons))
        control = {e.user_id for entries in tenant.ledger.values() for e in entries.values()
                   if e.control and e.campaign_id == campaign_id}
        conversions = {u for (c, u) in tenant.conversions if c == campaign_id}
        return CampaignAggregate(campaign_id, decisions, tuple(variants), len(control),
                                 len(control & conversions))

    async def channel_open_counts(self, tenant_id: str, since: float) -> dict[str, tuple[int, int]]:
        counts: dict[str, tuple[int, int]] = {}
        for d in self._r(tenant_id).deliveries.values():
            if d.status is DeliveryStatus.SENT and d.created_at >= since:
                sent, opened = counts.get(d.channel, (0, 0))
                counts[d.channel] = (sent + 1, opened + _opened(d))
        return counts

    # -- scheduled fan-out: the audience by zone, in pages, and each slot's progress ---

    async def profile_zones(self, tenant_id: str) -> list[str | None]:
        zones = {p.attributes.timezone for p in self._r(tenant_id).profiles.values()}
        return sorted(zones, key=lambda z: (z is not None, z or ""))

    async def profiles_page(
        self, tenant_id: str, *, timezone: str | None, after: str | None, limit: int
    ) -> list[Profile]:
        tenant = self._r(tenant_id)
        profiles = tenant.profiles
        if tenant.zone_index is None:
            index: dict[str | None, list[str]] = {}
            for user_id, profile in profiles.items():
                index.setdefault(profile.attributes.timezone, []).append(user_id)
            for ids in index.values():
                ids.sort()
            tenant.zone_index = index
        ids = tenant.zone_index.get(timezone, [])
        start = 0 if after is None else bisect.bisect_right(ids, after)
        page: list[Profile] = []
        for user_id in ids[start:]:
            found = profiles.get(user_id)
            if found is not None and found.attributes.timezone == timezone:
                page.append(found)
                if len(page) == limit:
                    break
        return page

    async def slot_cursors(self, tenant_id: str, since: float) -> dict[str, SlotCursor]:
        cursors = self._r(tenant_id).slot_cursors
        return {k: c for k, c in cursors.items() if c.at >= since}

    async def save_slot_cursor(self, tenant_id: str, cursor: SlotCursor) -> None:
        cursors = self._t(tenant_id).slot_cursors
        old = cursors.get(cursor.cursor_id)
        if old is not None:
            after = old.after_user
            if cursor.after_user is not None and (after is None or cursor.after_user > after):
                after = cursor.after_user
            cursor = replace(cursor, after_user=after, done=old.done or cursor.done)
        cursors[cursor.cursor_id] = cursor

    # -- processing ------------------------------------------------------------------

    @asynccontextmanager
    async def batch(
        self, tenant_id: str, user_ids: Sequence[str], *, skip_locked: bool = False
    ) -> AsyncIterator[_MemoryTx]:
        tenant = self._t(tenant_id)
        users = tuple(sorted(set(user_ids)))
        if skip_locked and tenant.lock.locked():
            # The tenant lock covers every user: all of them are held by another batch.
            yield _MemoryTx(tenant, ())
            return
        async with tenant.lock:
            tx = _MemoryTx(tenant, users)
            yield tx
            tx.commit()

    async def due_users(self, tenant_id: str, now: float, limit: int) -> list[str]:
        return due_user_ids(self._r(tenant_id).presence, now, limit)

    # -- models (server.store.roles.models; kept in memory_models) --------------------

    async def add_model(self, tenant_id: str, kind: ModelKind, blob: bytes,
                        evaluation: dict[str, Any], *, promote: bool) -> ModelRecord:
        return self._t(tenant_id).models.add(tenant_id, kind, blob, evaluation,
                                             promote=promote, now=self._clock())

    async def list_models(self, tenant_id: str,
                          kind: ModelKind | None = None) -> list[ModelRecord]:
        return self._r(tenant_id).models.listing(kind)

    async def promoted_model(self, tenant_id: str, kind: ModelKind) -> ModelRecord | None:
        return self._r(tenant_id).models.promoted(kind)

    async def training_events(self, tenant_id: str, *, after: TrainingCursor | None,
                              limit: int) -> list[tuple[TrainingCursor, TrainingEvent]]:
        return training_page(self._r(tenant_id).behaviour.by_user, after, limit)

    async def training_visits(self, tenant_id: str, *, after: TrainingCursor | None,
                              limit: int) -> list[tuple[TrainingCursor, TrainingSignal]]:
        tenant = self._r(tenant_id)
        venues = {vid: venue for vid, (_text, _bbox, venue) in tenant.venues.items()}
        return visits_page(tenant.events, venues, after, limit)

    async def training_feedback(self, tenant_id: str, *, after: TrainingCursor | None,
                                limit: int) -> list[tuple[TrainingCursor, TrainingSignal]]:
        tenant = self._r(tenant_id)
        return feedback_page(tenant.deliveries.values(), tenant.feedback_times,
                             tenant.campaigns, after, limit)

    # -- behaviour (server.store.roles.behaviour) -------------------------------------

    async def ingest_behaviour(
        self, tenant_id: str, records: Sequence[BehaviourRecord], *,
        campaigns: Sequence[Campaign] = (), now: float | None = None,
    ) -> list[BehaviourRecord]:
        # Synchronous between awaits: atomic, and a batch of the users cannot interleave.
        tenant = self._t(tenant_id)
        return tenant.behaviour.ingest(records, campaigns,
                                       self._clock() if now is None else now,
                                       tenant.decisions)

    async def due_triggers(self, tenant_id: str, now: float,
                           limit: int) -> list[PendingTrigger]:
        return self._r(tenant_id).behaviour.due(now, limit)

    async def open_triggers(self, tenant_id: str,
                            keys: Sequence[str]) -> list[PendingTrigger]:
        return self._r(tenant_id).behaviour.still_open(keys)

    async def settle_triggers(self, tenant_id: str, keys: Sequence[str]) -> int:
        return self._r(tenant_id).behaviour.fired(keys)

    async def list_behaviour(
        self, tenant_id: str, user_id: str, *, since: float | None = None, limit: int = 100
    ) -> list[BehaviourRecord]:
        return self._r(tenant_id).behaviour.listing(user_id, since, limit)

    async def get_features(self, tenant_id: str, user_id: str) -> UserFeatures | None:
        return self._r(tenant_id).behaviour.features.get(user_id)

    async def get_features_of(self, tenant_id: str,
                              user_ids: Sequence[str]) -> dict[str, UserFeatures]:
        features = self._r(tenant_id).behaviour.features
        return {u: features[u] for u in user_ids if u in features}

    async def get_tag_rules(self, tenant_id: str) -> TagRules | None:
        return self._r(tenant_id).behaviour.rules

    async def put_tag_rules(self, tenant_id: str, rules: TagRules) -> None:
        self._t(tenant_id).behaviour.rules = rules

    async def prune_behaviour(self, tenant_id: str, *, before: float, limit: int) -> int:
        return self._r(tenant_id).behaviour.prune(before, limit)


class _MemoryTx:
    """A batch transaction of :class:`MemoryStore`: reads committed data, buffers
    writes, applies them in :meth:`commit` (synchronously, so atomically)."""

    def __init__(self, tenant: _Tenant, users: tuple[str, ...]) -> None:
        self._tenant = tenant
        self._users = users
        self._allowed = frozenset(users)
        self._pings: list[_PingChunk] = []
        self._ping_keys: set[tuple[str, float]] = set()
        self._events: dict[str, EventRecord] = {}
        self._decisions: dict[str, DecisionRecord] = {}
        self._ledger: dict[str, LedgerEntry] = {}
        self._deliveries: dict[str, DeliveryRecord] = {}
        self._state: PresenceState | None = None

    @property
    def tenant_id(self) -> str:
        return self._tenant.record.tenant_id

    @property
    def user_ids(self) -> tuple[str, ...]:
        return self._users

    def _check(self, user_id: str) -> None:
        if user_id not in self._allowed:
            raise OutsideBatchError(f"user {user_id!r} is not locked by this batch")

    def _which(self, users: Sequence[str] | None) -> Sequence[str]:
        """``users`` (checked to be locked), sorted; all locked users when None."""
        if users is None:
            return self._users
        self._check_all(users)
        return sorted(set(users))

    def _check_all(self, user_ids: Iterable[str]) -> None:
        outside = set(user_ids) - self._allowed
        if outside:
            self._check(min(outside))

    async def load_state(self) -> PresenceState:
        return extract_users(self._tenant.presence, self._users)

    async def load_profiles(self, users: Sequence[str] | None = None) -> dict[str, Profile]:
        profiles = self._tenant.profiles
        return {u: profiles[u] for u in self._which(users) if u in profiles}

    async def load_ledger(
        self, since: float, users: Sequence[str] | None = None
    ) -> LedgerSnapshot:
        entries: list[LedgerEntry] = []
        wanted = self._which(users)
        for user_id in wanted:
            own = [e for e in self._tenant.ledger.get(user_id, {}).values() if e.at >= since]
            entries.extend(sorted(own, key=lambda e: e.at))
        streaks = {u: self._tenant.streaks[u] for u in wanted if u in self._tenant.streaks}
        return LedgerSnapshot(tuple(entries), streaks)

    async def load_push_feedback(
        self, since: float, users: Sequence[str] | None = None
    ) -> tuple[PushFeedback, ...]:
        wanted = set(self._which(users))
        rows = [PushFeedback(d.user_id, d.channel, d.created_at, _opened(d))
                for d in self._tenant.deliveries.values()
                if d.user_id in wanted and d.status is DeliveryStatus.SENT
                and d.created_at >= since]
        return tuple(sorted(rows, key=lambda r: (r.user_id, r.at)))

    async def insert_pings(self, pings: PingBatch, *, received_at: float) -> int:
        users = [str(u) for u in pings.user_id.tolist()]
        self._check_all(users)
        keys = list(zip(users, pings.ts.tolist(), strict=True))
        # A retried batch (its answer was lost) must not store its pings twice: skip a
        # (user, ts) already stored, as the PostgreSQL store does.
        stored, mine = self._tenant.pings.keys, self._ping_keys
        distinct = set(keys)
        if len(distinct) == len(keys) and stored.isdisjoint(distinct) and \
                mine.isdisjoint(distinct):
            keep = list(range(len(keys)))  # the usual batch: every ping is new
            mine |= distinct
        else:
            keep = []
            for i, key in enumerate(keys):
                if key not in stored and key not in mine:
                    mine.add(key)
                    keep.append(i)
        if not keep:
            return 0
        columns = np.column_stack([
            pings.ts, pings.lat, pings.lng, pings.accuracy_m, pings.speed_mps,
            pings.heading_deg, pings.mock.astype(np.float64),
            np.full(len(pings), received_at)])
        if len(keep) < len(users):
            columns = columns[keep]
            users = [users[i] for i in keep]
        self._pings.append(_PingChunk(np.asarray(users, dtype=str), columns))
        return len(keep)

    def _insert_keyed(
        self, rows: Iterable[tuple[str, str, _R]],
        committed: Callable[[str], Container[str]], buffer: dict[str, _R],
    ) -> list[_R]:
        """The keyed insert of every kind: buffer each ``(user id, key, row)`` whose key
        is neither in ``committed(user id)`` nor buffered already (the second of a key
        given twice is skipped too); returns the rows buffered now, in the order given."""
        new: list[_R] = []
        for user_id, key, row in rows:
            self._check(user_id)
            if key not in committed(user_id) and key not in buffer:
                buffer[key] = row
                new.append(row)
        return new

    async def insert_events(self, events: Sequence[EventRecord]) -> int:
        stored = self._tenant.events
        return len(self._insert_keyed(((r.event.user_id, r.event_key, r) for r in events),
                                      lambda u: stored.get(u, {}), self._events))

    async def insert_decisions(self, decisions: Sequence[DecisionRecord]) -> int:
        stored = self._tenant.decisions
        return len(self._insert_keyed(
            ((r.decision.user_id, r.decision_key, r) for r in decisions),
            lambda u: stored.get(u, {}), self._decisions))

    async def insert_ledger(self, entries: Sequence[KeyedEntry]) -> int:
        stored = self._tenant.ledger
        return len(self._insert_keyed(((k.entry.user_id, k.entry_key, k.entry) for k in entries),
                                      lambda u: stored.get(u, {}), self._ledger))

    async def insert_deliveries(self, deliveries: Sequence[NewDelivery]) -> list[DeliveryRecord]:
        # Keys are unique per tenant here (not per user): one outbox per tenant.
        stored = self._tenant.delivery_keys
        return self._insert_keyed(
            ((d.user_id, d.idempotency_key, DeliveryRecord.pending(d)) for d in deliveries),
            lambda _u: stored, self._deliveries)

    async def save_state(self, state: PresenceState) -> None:
        self._check_all(user_ids(state))
        # Merged at commit; the caller must not use ``state`` afterwards (it is moved in).
        self._state = state

    def commit(self) -> None:
        t = self._tenant
        for chunk in self._pings:
            t.pings.append(chunk)
        for key, event in self._events.items():
            t.events.setdefault(event.event.user_id, {})[key] = event
        for key, decision in self._decisions.items():
            t.decisions.setdefault(decision.decision.user_id, {})[key] = decision
        for key, entry in self._ledger.items():
            t.ledger.setdefault(entry.user_id, {})[key] = entry
        for key, delivery in self._deliveries.items():
            t.put_delivery(delivery)
            t.delivery_keys[key] = delivery.delivery_id
        if self._state is not None:
            merge_users(t.presence, self._state)


def _opened(delivery: DeliveryRecord) -> bool:
    """Whether the delivery's feedback says the user opened it."""
    return any(kind in delivery.feedback for kind in OPENED_KINDS)
