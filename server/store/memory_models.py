"""The embedded store's models for one tenant (``server.store.roles.models``): every
version of each kind, in memory for the process lifetime; and the pages training reads
of the tenant's behaviour events, visits and push feedback."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from server.store.base import DeliveryRecord, EventRecord
from server.store.memory_behaviour import Packed, unpack
from server.store.roles.behaviour import BehaviourRecord
from server.store.roles.models import (
    ModelKind,
    ModelRecord,
    TrainingCursor,
    TrainingEvent,
    TrainingSignal,
)
from triggers.decisions import Campaign
from triggers.presence_events import EventKind
from venues.model import Venue

_Row = TypeVar("_Row")


@dataclass(slots=True)
class ModelShelf:
    """A tenant's model versions by kind, oldest first."""

    versions: dict[str, list[ModelRecord]] = field(default_factory=dict)

    def add(self, tenant_id: str, kind: ModelKind, blob: bytes, evaluation: dict[str, Any],
            *, promote: bool, now: float) -> ModelRecord:
        """Append the next version; with ``promote`` it replaces the promoted one."""
        own = self.versions.setdefault(kind, [])
        if promote:
            own[:] = [replace(r, promoted=False) if r.promoted else r for r in own]
        record = ModelRecord(tenant_id, kind, len(own) + 1, now, dict(evaluation), promote,
                             bytes(blob))
        own.append(record)
        return _listed(record)

    def listing(self, kind: ModelKind | None) -> list[ModelRecord]:
        kinds = sorted(self.versions) if kind is None else [kind]
        return [_listed(r) for k in kinds for r in reversed(self.versions.get(k, []))]

    def promoted(self, kind: ModelKind) -> ModelRecord | None:
        return next((r for r in reversed(self.versions.get(kind, [])) if r.promoted), None)


def _listed(record: ModelRecord) -> ModelRecord:
    return replace(record, blob=b"", evaluation=dict(record.evaluation))


def training_page(by_user: dict[str, dict[str, Packed]],
                  after: TrainingCursor | None,
                  limit: int) -> list[tuple[TrainingCursor, TrainingEvent]]:
    """The tenant's events after ``after`` by (ts, key), at most ``limit`` (a pass over
    every event and a sort of those after ``after``, per page: the embedded store holds a
    bounded number; only the page's events are read back from their stored form)."""
    first_t = -math.inf if after is None else after[0]
    rows = [((packed[0], key), packed) for own in by_user.values()
            for key, packed in own.items() if packed[0] >= first_t]
    return [(cursor, _training(unpack(cursor[1], packed)))
            for cursor, packed in _page(rows, after, limit)]


def _training(record: BehaviourRecord) -> TrainingEvent:
    event = record.event
    category = event.item.category if event.item is not None else None
    return TrainingEvent(event.user_id, float(event.ts), str(event.kind), category)


def visits_page(events: Mapping[str, Mapping[str, EventRecord]], venues: Mapping[str, Venue],
                after: TrainingCursor | None,
                limit: int) -> list[tuple[TrainingCursor, TrainingSignal]]:
    """The ENTER events of venues with tags after ``after`` by (start, key), at most
    ``limit`` (a sort of every such event per page, as :func:`training_page`)."""
    rows: list[tuple[TrainingCursor, TrainingSignal]] = []
    for own in events.values():
        for key, record in own.items():
            event = record.event
            venue = venues.get(event.venue_id) if event.kind is EventKind.ENTER else None
            if venue is not None and venue.tags:
                rows.append(((event.at, key),
                             TrainingSignal(event.user_id, event.at, "visit", venue.tags)))
    return _page(rows, after, limit)


_FEEDBACK_KINDS = {"opened": "open", "clicked": "click"}
"""As in :mod:`server.store.postgres_models`: opens and clicks teach, as engagement."""


def feedback_page(deliveries: Iterable[DeliveryRecord],
                  times: Mapping[str, Mapping[str, float]], campaigns: Mapping[str, Campaign],
                  after: TrainingCursor | None,
                  limit: int) -> list[tuple[TrainingCursor, TrainingSignal]]:
    """Each opened or clicked feedback after ``after`` by (the push's creation time,
    ``delivery id/kind``), at most ``limit``."""
    rows: list[tuple[TrainingCursor, TrainingSignal]] = []
    for delivery in deliveries:
        campaign = campaigns.get(delivery.campaign_id)
        categories = campaign.categories if campaign is not None else ()
        recorded = times.get(delivery.delivery_id, {})
        for kind in delivery.feedback:
            trained_as = _FEEDBACK_KINDS.get(kind)
            if trained_as is None:
                continue
            ts = recorded.get(kind, delivery.created_at)
            rows.append(((delivery.created_at, f"{delivery.delivery_id}/{kind}"),
                         TrainingSignal(delivery.user_id, ts, trained_as, categories)))
    return _page(rows, after, limit)


def _page(rows: list[tuple[TrainingCursor, _Row]], after: TrainingCursor | None,
          limit: int) -> list[tuple[TrainingCursor, _Row]]:
    if after is not None:
        rows = [r for r in rows if r[0] > after]
    rows.sort(key=lambda r: r[0])
    return rows[:max(limit, 0)]
