"""The embedded store's models for one tenant (``server.store.roles.models``): every
version of each kind, in memory for the process lifetime."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, replace
from typing import Any

from server.store.memory_behaviour import Packed, unpack
from server.store.roles.behaviour import BehaviourRecord
from server.store.roles.models import (
    ModelKind,
    ModelRecord,
    TrainingCursor,
    TrainingEvent,
)


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
    """The tenant's events after ``after`` by (ts, key), at most ``limit`` (a sort of
    every event per page: the embedded store holds a bounded number; only the page's
    events are read back from their stored form)."""
    ordered = sorted(((packed[0], key), packed) for own in by_user.values()
                     for key, packed in own.items())
    start = 0 if after is None else bisect.bisect_right(ordered, after, key=lambda p: p[0])
    return [(cursor, _training(unpack(cursor[1], packed))) for cursor, packed in
            ordered[start:start + max(limit, 0)]]


def _training(record: BehaviourRecord) -> TrainingEvent:
    event = record.event
    category = event.item.category if event.item is not None else None
    return TrainingEvent(event.user_id, float(event.ts), str(event.kind), category)
