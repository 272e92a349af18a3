"""The models role: the learned models of a tenant, versioned (one row per training run
and kind, ``interests`` or ``sendtime``), with their offline evaluation and whether each
is the promoted one; and what training reads in bulk: the tenant's behaviour events,
visits to tagged venues and feedback on pushes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from server.store.roles.tenants import TenantDirectory

ModelKind = Literal["interests", "sendtime"]
MODEL_KINDS: tuple[ModelKind, ...] = ("interests", "sendtime")


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """One stored model version. ``blob`` is the model file (the bytes ``geopush
    interests|sendtime fit`` would write); listings leave it empty (``b""``)."""

    tenant_id: str
    kind: ModelKind
    version: int
    created_at: float
    evaluation: dict[str, Any]
    promoted: bool
    blob: bytes = field(default=b"", repr=False)


@dataclass(frozen=True, slots=True)
class TrainingEvent:
    """What training reads of a stored behaviour event."""

    user_id: str
    ts: float
    kind: str
    category: str | None


@dataclass(frozen=True, slots=True)
class TrainingSignal:
    """An engagement training reads from another source than behaviour events: a visit
    (kind ``visit`` at its start, the venue's tags) or a push the user opened or clicked
    (kind ``open`` or ``click`` at the feedback's time, the campaign's ``categories``)."""

    user_id: str
    ts: float
    kind: str
    categories: tuple[str, ...]


TrainingCursor = tuple[float, str]
"""(time, key) of the last row of a page: the next page starts after it. Events: (ts,
event key); visits: (start, presence event key); feedback: (the push's creation time,
``delivery id/kind``)."""


class ModelStore(TenantDirectory, Protocol):
    """What the training loop, ``GET /v1/models``, ``POST /v1/models/train`` and
    ``geopush model report`` ask of a store."""

    async def add_model(self, tenant_id: str, kind: ModelKind, blob: bytes,
                        evaluation: dict[str, Any], *, promote: bool) -> ModelRecord:
        """Store a new version of the tenant's ``kind`` model (version: one more than
        the last, from 1; ``created_at`` from the store's clock). With ``promote`` it
        becomes the promoted one and the previous one is not any more, in the same
        write; without, the promoted one stays. Raises ``NotFoundError`` for an
        unknown tenant."""
        ...

    async def list_models(self, tenant_id: str,
                          kind: ModelKind | None = None) -> list[ModelRecord]:
        """The tenant's model versions (of ``kind``, or all), newest first by kind and
        version, without their blobs."""
        ...

    async def promoted_model(self, tenant_id: str, kind: ModelKind) -> ModelRecord | None:
        """The promoted version of ``kind`` with its blob, or ``None``."""
        ...

    async def training_events(self, tenant_id: str, *, after: TrainingCursor | None,
                              limit: int) -> Sequence[tuple[TrainingCursor, TrainingEvent]]:
        """The tenant's stored behaviour events after ``after``, by (ts, key), at most
        ``limit``: each with its cursor."""
        ...

    async def training_visits(self, tenant_id: str, *, after: TrainingCursor | None,
                              limit: int) -> Sequence[tuple[TrainingCursor, TrainingSignal]]:
        """The tenant's visits (stored ENTER events, so open visits count) to venues
        with tags, by (start, key) after ``after``, at most ``limit``: kind ``visit``,
        the venue's current tags (a deleted venue's visits are left out)."""
        ...

    async def training_feedback(self, tenant_id: str, *, after: TrainingCursor | None,
                                limit: int) -> Sequence[tuple[TrainingCursor, TrainingSignal]]:
        """The tenant's ``opened`` and ``clicked`` feedback, one row each, by (the
        push's creation time, ``delivery id/kind``) after ``after``, at most ``limit``:
        kind ``open`` or ``click`` at the time the feedback was recorded (the push's
        creation time for feedback stored before those times were), the campaign's
        ``categories`` (none when the campaign is gone)."""
        ...
